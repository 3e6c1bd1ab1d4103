"""The federation core, flwr-free: what the cloud does in a round, written once for every engine.

- `aggregation`: FedAvg weighted by #images and Personalized Update (pure numpy);
- `core`: `FederationCore`, the rules of a round (downlink, checks, aggregation, records);
- `state`: the cloud's state and its checkpoint;
- `start`: from settings to a fresh or resumed core;
- `report`, `diagnostics_table`: metrics.json, report.md, curves.png;
- `in_process`: the core and the edge learners in one process (no Flower), and standalone training.

The Flower strategy (`server_app.strategy`) and the in-process driver both drive `FederationCore`.
"""
