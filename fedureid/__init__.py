"""The project's own glue: the `fedureid` command line, the Flower process launcher and the
message records both apps exchange (`records`, which imports only flwr and numpy)."""
