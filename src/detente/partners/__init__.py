"""Partners (other nodes) and the TAXII client credentials that act for them."""

from detente.partners.book import PartnerBook, TierSource, effective_tier
from detente.partners.model import TIER_NAMES, Client, Partner

__all__ = ["TIER_NAMES", "Client", "Partner", "PartnerBook", "TierSource",
           "effective_tier"]
