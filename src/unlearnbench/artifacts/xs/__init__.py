"""Xu & Strohmer's artifacts (feature unlearning): the tabular experiment (tabular), the image experiments
(images), their figures and table (plots)."""
