"""The contract scenarios, one module per area. pytest collects them when ``--oms-backend`` is
given; each test function is one scenario and its name is the scenario's stable id."""
