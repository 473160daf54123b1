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
from ._svg import MarbleRow as MarbleRow
from ._svg import marble_rows as marble_rows
from ._svg import marble_svg as marble_svg
from ._svg import notifications_svg as notifications_svg

__all__ = [
    "ColdObservable",
    "Expectation",
    "HotObservable",
    "MarbleContext",
    "MarbleRow",
    "Notification",
    "Subscription",
    "SubscriptionExpectation",
    "VirtualTimeLoop",
    "cold",
    "expect",
    "expect_subscriptions",
    "hot",
    "marble_rows",
    "marble_svg",
    "marbles",
    "notifications_svg",
    "parse_marbles",
    "parse_subscription_marbles",
    "render_notifications",
]
