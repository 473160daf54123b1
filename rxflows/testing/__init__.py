"""Testing support for rxflows users: virtual time and marble diagrams."""

from ._loop import VirtualTimeLoop as VirtualTimeLoop
from ._marbles import ColdObservable as ColdObservable
from ._marbles import Expectation as Expectation
from ._marbles import HotObservable as HotObservable
from ._marbles import MarbleContext as MarbleContext
from ._marbles import Notification as Notification
from ._marbles import Subscription as Subscription
from ._marbles import SubscriptionExpectation as SubscriptionExpectation
from ._marbles import cold as cold
from ._marbles import expect as expect
from ._marbles import expect_subscriptions as expect_subscriptions
from ._marbles import hot as hot
from ._marbles import marbles as marbles
from ._marbles import parse_marbles as parse_marbles
from ._marbles import parse_subscription_marbles as parse_subscription_marbles
from ._marbles import render_notifications as render_notifications

__all__ = [
    "ColdObservable",
    "Expectation",
    "HotObservable",
    "MarbleContext",
    "Notification",
    "Subscription",
    "SubscriptionExpectation",
    "VirtualTimeLoop",
    "cold",
    "expect",
    "expect_subscriptions",
    "hot",
    "marbles",
    "parse_marbles",
    "parse_subscription_marbles",
    "render_notifications",
]
