"""Detections: Sigma rules loaded (`rules`), compiled to DuckDB SQL (`compiler`, with the
pySigma `backend`, `pipeline` and `correlation` modules) and tested on example events
(`testing`). `sentinel.duck.register_macros` must run on any connection that executes them."""
