# The one line a backend's test suite needs to run the shared contract suite:
#     pytest plugins/salesforce_oms/tests/contract --oms-backend salesforce
pytest_plugins = ["omsbridge_contract.plugin"]
