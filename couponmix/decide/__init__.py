"""Turning errors into a decision: the revenue/error Pareto front, the recommendation rule, the planner
(least-cost mixture for a tolerance, log size needed) and the curves shown in reports."""
