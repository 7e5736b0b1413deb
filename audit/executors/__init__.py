"""Campaigns and the demo, run by an executor (local or Ray); imports run, report, rules and below, never api."""

from audit.executors.base import Cell, CellResult, Executor, config_hash
from audit.executors.campaign import Campaign, load_campaign
from audit.executors.cells import (CampaignResult, DemoResult, campaign_cells, demo, get_executor, run_campaign,
                                   run_cells)

__all__ = ["Cell", "CellResult", "Executor", "config_hash", "get_executor", "Campaign", "load_campaign",
           "CampaignResult", "DemoResult", "campaign_cells", "demo", "run_campaign", "run_cells"]
