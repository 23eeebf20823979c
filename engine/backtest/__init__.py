"""Backtesting through the live code: the analysis service, the signal rules and the
risk gate run in one process on a simulated clock driven by the replayed bars
(:mod:`engine.backtest.runner`); strategies (:mod:`engine.backtest.strategy`) trade
through a bar broker with documented fill models (:mod:`engine.backtest.broker`)."""
