"""Coupon policies: context -> action probabilities, the mixture of components a log is drawn from, the
simplex of mixture weights, the cross-fitted revenue model and greedy allocation under a budget."""
