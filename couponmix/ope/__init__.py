"""Off-policy evaluation: estimator records (obp classes), their exact error formulas over mixtures
(in memory and streamed), the decision criterion that picks the estimator per target, weight-variance
checks, and Monte Carlo validation against obp."""
