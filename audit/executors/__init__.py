"""Campaigns (models x datasets) and the executors that run their cells: local or on Ray."""

from audit.executors.base import Cell, CellResult, Executor, config_hash, get_executor
from audit.executors.campaign import Campaign, load_campaign

__all__ = ["Cell", "CellResult", "Executor", "config_hash", "get_executor", "Campaign", "load_campaign"]
