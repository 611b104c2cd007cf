"""Next-best-action policies: a Vowpal Wabbit contextual bandit and the baselines it is measured against.

Every class implements :class:`offerloop.ml.base.Policy`:

* :class:`VWContextualBandit` -- VW ``--cb_explore_adf`` (epsilon, squarecb, softmax, bag, cover);
* :class:`RandomPolicy` -- uniform pmf;
* :class:`PopularityPolicy` -- smoothed mean reward per action id, greedy;
* :class:`EpsilonGreedyPolicy` -- mean reward per action id, epsilon-greedy, no context;
* :class:`RulesOnlyPolicy` -- keeps the order it is given;
* :class:`LinUCBPolicy` -- disjoint LinUCB (one ridge regression per action id) on numpy.

All of them accept unseen actions, unseen feature names and missing features; ``None``, NaN and
infinite feature values count as missing, numbers are clipped to ``+/-MAX_ABS_VALUE``, and any other
value type raises ``TypeError`` (in the policies that read features). ``learn_one`` checks its feedback
the same way everywhere: ``chosen`` must index ``actions``, ``probability`` must be in ``(0, 1]`` and
``reward`` finite with ``|reward| <= MAX_ABS_VALUE``, else ``IndexError`` / ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping

from offerloop.ml.base import Policy
from offerloop.ml.policies.common import MAX_ABS_VALUE, PAYLOAD_VERSION
from offerloop.ml.policies.epsilon_greedy import EpsilonGreedyPolicy
from offerloop.ml.policies.linucb import LinUCBPolicy
from offerloop.ml.policies.popularity import PopularityPolicy
from offerloop.ml.policies.random_policy import RandomPolicy
from offerloop.ml.policies.rules_only import RulesOnlyPolicy
from offerloop.ml.policies.vw import VWContextualBandit

# bench/policies.py formats and scores VW examples directly
from offerloop.ml.policies.vw_format import _vw_predict, _vw_shared_line, _vw_text

__all__ = [
    "MAX_ABS_VALUE",
    "PAYLOAD_VERSION",
    "POLICY_KINDS",
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "PopularityPolicy",
    "RandomPolicy",
    "RulesOnlyPolicy",
    "VWContextualBandit",
    "_vw_predict",
    "_vw_shared_line",
    "_vw_text",
]

POLICY_KINDS: Mapping[str, type[Policy]] = {
    cls.kind: cls
    for cls in (
        VWContextualBandit,
        RandomPolicy,
        PopularityPolicy,
        EpsilonGreedyPolicy,
        RulesOnlyPolicy,
        LinUCBPolicy,
    )
}
