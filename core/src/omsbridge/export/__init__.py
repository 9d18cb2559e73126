"""The export job: post the outbox to each merchant's OMS, with retries, pauses and dead letters."""

from omsbridge.export.job import ExportJob, ExportSettings, MerchantReport, RunReport
from omsbridge.export.retry import RetryPolicy

__all__ = ["ExportJob", "ExportSettings", "MerchantReport", "RetryPolicy", "RunReport"]
