"""Closed forms and one-dimensional quadrature for the paper setting, derived by hand.

x ~ U(0,1)^4, cells (b2, b3) = (x2 >= .5, x3 >= .5) each with probability 1/4. Given a cell,
x2 and x3 are uniform on their halves: E[x | upper] = 3/4, E[x^2 | upper] = 7/12,
E[x | lower] = 1/4, E[x^2 | lower] = 1/12. mu(x,1) = x2 + x3, m2(x,1) = (x2 + x3)^2 + 1,
mu(x,0) = 0, m2(x,0) = 1. Policies depend on x1 and the cell only, so within a cell the
(x2, x3) moments factor out and only an integral over x1 remains.
"""

import numpy as np
from scipy import integrate

CELLS = ((0, 0), (0, 1), (1, 0), (1, 1))
E1 = {0: 0.25, 1: 0.75}
E2 = {0: 1 / 12, 1: 7 / 12}

# V(pi) by hand: V(pi1) = E[x1] E[x2 + x3] = 1/2; V(pi2) = E[1{x2>=.5}(x2 + x3)] = 3/8 + 1/4 = 5/8 = V(pi3);
# V(pi_e1) = .8 * 5/8 + .2 * (1/8 + 1/4) = 0.575; V(pi_e2) = .2 * 5/8 + .8 * 3/8 = 0.425.
VALUES = {"pi1": 0.5, "pi2": 0.625, "pi3": 0.625, "pi_e1": 0.575, "pi_e2": 0.425}


def cell_mu(b2, b3):
    return E1[b2] + E1[b3]


def cell_m2(b2, b3):
    return E2[b2] + 2 * E1[b2] * E1[b3] + E2[b3] + 1.0


def target_p1(target, b2):
    hi = 0.8 if target == "pi_e1" else 0.2
    return hi if b2 else 1.0 - hi


def clipped_moments(alpha, target, lam=np.inf, floor=0.0):
    """(mean, second) of balanced clipped IPS by quadrature over x1 within each cell."""
    a1, a2, a3 = alpha
    mean = second = 0.0
    for b2, b3 in CELLS:
        pe1 = target_p1(target, b2)
        for action, pe, mu, m2 in ((1, pe1, cell_mu(b2, b3), cell_m2(b2, b3)), (0, 1 - pe1, 0.0, 1.0)):

            def p(x1):
                g = min(max(x1, floor), 1 - floor)
                return a1 * g + a2 * b2 + a3 * b3 if action == 1 else a1 * (1 - g) + a2 * (1 - b2) + a3 * (1 - b3)

            def mean_f(x1):
                px = p(x1)
                return min(pe, lam * px) if px > 0 else 0.0

            def second_f(x1):
                px = p(x1)
                return min(pe * pe / px, lam * lam * px) if px > 0 else 0.0

            pts = sorted({floor, 1 - floor, *(np.linspace(0, 1, 9)[1:-1])})
            mean += 0.25 * mu * integrate.quad(mean_f, 0, 1, points=pts, limit=400)[0]
            second += 0.25 * m2 * integrate.quad(second_f, 0, 1, points=pts, limit=400)[0]
    return mean, second
