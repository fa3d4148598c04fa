"""What a run reports: the aggregated results every table and figure reads (report), the notes under tables
(knobnotes), and each paper's artifacts: uib/ (Tables, figures), jit/ (JiT's tables and figures), xs/ (Xu & Strohmer)."""
