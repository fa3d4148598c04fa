"""JiT's artifacts (Foster et al., TMLR 2025): tables and figures (report), the 2-D toy (toy)."""
