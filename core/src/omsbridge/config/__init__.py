"""The config file: merchants, each with one backend and that backend's settings; secrets as references."""

from omsbridge.config.loader import Config, MerchantConfig, StoreConfig, load_config, parse_config
from omsbridge.config.secrets import Secret

__all__ = ["Config", "MerchantConfig", "Secret", "StoreConfig", "load_config", "parse_config"]
