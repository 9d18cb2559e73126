"""The config file: merchants, each with one backend and that backend's settings; secrets as references."""

from omsbridge.config.loader import Config, MerchantConfig, StoreConfig, load_config, parse_config
from omsbridge.config.secrets import Secret
from omsbridge.config.validators import http_url, one_of, positive, setting
from omsbridge.config.webhook import WebhookConfig

__all__ = [
    "Config",
    "MerchantConfig",
    "Secret",
    "StoreConfig",
    "WebhookConfig",
    "http_url",
    "load_config",
    "one_of",
    "parse_config",
    "positive",
    "setting",
]
