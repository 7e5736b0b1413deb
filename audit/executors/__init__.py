"""Campaigns (models x datasets, and the demo) and the executors that run their cells, local or on Ray; may
import run, report, rules, evidence and everything below them, never api, cli or tui."""

from audit.executors.base import Cell, CellResult, Executor, config_hash
from audit.executors.campaign import Campaign, load_campaign
from audit.executors.cells import CampaignResult, DemoResult, campaign_cells, demo, get_executor, run_campaign, run_cells

__all__ = ["Cell", "CellResult", "Executor", "config_hash", "get_executor", "Campaign", "load_campaign",
           "CampaignResult", "DemoResult", "campaign_cells", "demo", "run_campaign", "run_cells"]
