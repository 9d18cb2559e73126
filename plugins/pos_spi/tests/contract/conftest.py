# The one line a backend's test suite needs to run the shared contract suite:
#     pytest plugins/pos_spi/tests/contract --oms-backend pos-spi
pytest_plugins = ["omsbridge_contract.plugin"]
