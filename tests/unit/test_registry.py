import pytest

from omniman import registry


class Mod:
    def __init__(self, code, order):
        self.code, self.order = code, order

    def apply(self, *, channel, session, ctx):
        pass


class Val:
    def __init__(self, code, stage):
        self.code, self.stage = code, stage

    def validate(self, *, channel, session, ctx):
        pass


class Handler:
    def __init__(self, topic):
        self.topic = topic

    def handle(self, *, message, ctx):
        pass


class Resolver:
    source = "stock"

    def resolve(self, *, session, issue, action, ctx):
        return session


def test_modifiers_sorted_by_order():
    registry.clear()
    registry.register_modifier(Mod("late", 50))
    registry.register_modifier(Mod("early", 10))
    registry.register_modifier(Mod("also-early", 10))
    assert [m.code for m in registry.get_modifiers()] == ["also-early", "early", "late"]


def test_validators_by_stage():
    registry.clear()
    registry.register_validator(Val("a", "draft"))
    registry.register_validator(Val("b", "commit"))
    assert [v.code for v in registry.get_validators()] == ["a", "b"]
    assert [v.code for v in registry.get_validators(stage="commit")] == ["b"]
    with pytest.raises(ValueError):
        registry.register_validator(Val("c", "later"))


def test_second_handler_for_a_topic_raises():
    registry.clear()
    handler = registry.register_directive_handler(Handler("stock.hold"))
    with pytest.raises(ValueError):
        registry.register_directive_handler(Handler("stock.hold"))
    assert registry.get_directive_handler("stock.hold") is handler
    assert registry.get_directive_handler("nope") is None
    assert registry.get_directive_handlers() == {"stock.hold": handler}


def test_resolvers_and_clear():
    registry.clear()
    resolver = registry.register_issue_resolver(Resolver())
    assert registry.get_issue_resolver("stock") is resolver
    with pytest.raises(ValueError):
        registry.register_issue_resolver(Resolver())
    registry.clear()
    assert registry.get_issue_resolver("stock") is None and registry.get_modifiers() == []


def test_registering_something_that_is_not_an_extension_fails():
    with pytest.raises(TypeError):
        registry.register_modifier(object())
    with pytest.raises(TypeError):
        registry.register_directive_handler(Val("x", "draft"))
