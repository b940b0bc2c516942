"""`promml backtest`: replay prediction logs through the real exporter and the shipped rules, in simulated time.

The pieces, in the order a run uses them: `clock` and `gated_follower` let the exporter read a finished log as if
it were being written (`replay`), `model_side` adds the series the instrumented model would have exposed,
`openmetrics` writes every scraped sample, `tsdb` turns them into blocks and asks Prometheus for the rules'
answers, `alert_state` applies `for` / `keep_firing_for`, `routing` plays Alertmanager's tree, `report` and `plot`
show the result (docs/backtest.md).
"""
