"""Bot recognition by user agent.

The list of crawler patterns is the community-maintained `crawler-user-agents` package (pinned in
requirements.txt; upgrade it to pick up new crawlers). An empty user agent is a bot too: every
browser sends one. Bot events are still stored (flagged), so nothing disappears silently, but
reports and billing counts exclude them.
"""
import functools

import crawleruseragents

# Matching one user agent against ~1,500 patterns costs ~150 µs; real traffic repeats a small
# set of user agents, so a bounded cache makes the hot path a dictionary lookup.
_CACHE_SIZE = 8192
# Longer user agents are truncated before matching (and caching): real ones are < 512 chars.
_MAX_UA_LENGTH = 1024


def is_bot(user_agent):
    """True for an empty user agent or one matching a known crawler pattern."""
    if not user_agent or not user_agent.strip():
        return True
    return _matches_crawler(user_agent[:_MAX_UA_LENGTH])


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _matches_crawler(user_agent):
    return crawleruseragents.is_crawler(user_agent)
