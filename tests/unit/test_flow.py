from omniman.flow import DEFAULT_ORDER_FLOW, build_order_flow, validate_order_flow


def test_default_flow_matches_the_spec():
    flow = build_order_flow(None)
    assert flow.initial_status == "new"
    assert flow.allowed_from("new") == ["confirmed", "cancelled"]
    assert flow.allowed_from("confirmed") == ["processing", "ready", "cancelled"]
    assert flow.allowed_from("processing") == ["ready", "cancelled"]
    assert flow.allowed_from("ready") == ["dispatched", "completed"]
    assert flow.allowed_from("dispatched") == ["delivered", "returned"]
    assert flow.allowed_from("delivered") == ["completed", "returned"]
    assert flow.allowed_from("returned") == ["completed"]
    assert flow.terminal_statuses == ["completed", "cancelled"]
    assert flow.allowed_from("completed") == [] and flow.is_terminal("cancelled")


def test_override_replaces_keys_one_by_one():
    flow = build_order_flow({"transitions": {"new": ["done"]}, "terminal_statuses": ["done"]})
    assert flow.allowed_from("new") == ["done"]
    assert flow.allowed_from("confirmed") == []  # the whole transitions key was replaced
    assert flow.initial_status == "new" and flow.on_enter == {}
    assert DEFAULT_ORDER_FLOW["transitions"]["new"] == ["confirmed", "cancelled"]  # default untouched


def test_terminal_status_never_moves_even_if_configured():
    flow = build_order_flow({"transitions": {"new": ["done"], "done": ["new"]}, "terminal_statuses": ["done"]})
    assert flow.allowed_from("done") == []
    assert flow.can("new", "done") and not flow.can("done", "new")


def test_validate_order_flow_names_each_problem():
    assert validate_order_flow(None) == [] and validate_order_flow({}) == []
    assert validate_order_flow({"auto_transitions": {"on_create": "confirmed"}}) == []
    problems = validate_order_flow(
        {
            "transitions": {"new": ["done"], "done": ["new"]},
            "terminal_statuses": ["done"],
            "auto_transitions": {"on_create": "ghost", "on_lunch": "done"},
            "on_enter": {"limbo": ["x"]},
            "colour": "red",
        }
    )
    assert problems == ["order_flow: unknown key 'colour'"]
    problems = validate_order_flow(
        {
            "transitions": {"new": ["done"], "done": ["new"]},
            "terminal_statuses": ["done"],
            "auto_transitions": {"on_create": "ghost", "on_lunch": "done"},
            "on_enter": {"limbo": ["x"]},
        }
    )
    assert "terminal status 'done' has outgoing transitions" in problems
    assert "order_flow.auto_transitions.on_create: unknown status 'ghost'" in problems
    assert "order_flow.auto_transitions: unknown key 'on_lunch'" in problems
    assert "order_flow.on_enter: unknown status 'limbo'" in problems
    assert validate_order_flow({"transitions": []}) == ["order_flow.transitions must be a dict"]
    assert validate_order_flow({"auto_transitions": {"on_create": "ready"}}) == [
        "order_flow.auto_transitions.on_create: 'new' cannot move to 'ready'"
    ]


def test_path_is_the_shortest_walk_along_the_flow():
    flow = build_order_flow(None)
    assert flow.path("new", "new") == []
    assert flow.path("new", "completed") == ["confirmed", "ready", "completed"]
    assert flow.path("dispatched", "completed") == ["delivered", "completed"]
    assert flow.path("completed", "new") is None  # terminal: nowhere to go


def test_statuses_are_listed_in_first_mention_order():
    flow = build_order_flow(None)
    assert flow.statuses == [
        "new", "confirmed", "cancelled", "processing", "ready", "dispatched", "completed", "delivered", "returned",
    ]
    custom = build_order_flow({"initial_status": "draft", "transitions": {"draft": ["sent"]}, "terminal_statuses": ["void"]})
    assert custom.statuses == ["draft", "sent", "void"]


def test_unknown_statuses_and_cycles():
    flow = build_order_flow({"transitions": {"a": ["b"], "b": ["a", "c"]}, "terminal_statuses": ["c"], "initial_status": "a"})
    assert flow.allowed_from("zzz") == [] and not flow.can("zzz", "a")
    assert flow.path("a", "c") == ["b", "c"]  # the cycle a ↔ b is walked once
    assert flow.path("a", "zzz") is None


def test_on_enter_topics_and_auto_transitions_are_copies():
    config = {"on_enter": {"ready": ["notify"]}, "auto_transitions": {"on_create": "confirmed"}}
    flow = build_order_flow(config)
    topics = flow.topics_on_enter("ready")
    topics.append("other")
    assert flow.topics_on_enter("ready") == ["notify"] and flow.topics_on_enter("new") == []
    config["on_enter"]["ready"].append("late")
    assert flow.topics_on_enter("ready") == ["notify"]  # built once: later edits of the config do not leak in
    assert flow.auto_transitions == {"on_create": "confirmed"}


def test_empty_values_fall_back_to_the_default():
    flow = build_order_flow({"initial_status": "", "terminal_statuses": None, "transitions": None})
    assert flow.initial_status == "new" and flow.terminal_statuses == [] and flow.transitions == {}
def test_status_roles_default_to_the_default_flows_names():
    flow = build_order_flow(None)
    assert (flow.cancel_status, flow.done_status, flow.ready_status) == ("cancelled", "completed", "ready")
    assert flow.kitchen_statuses == ["new", "confirmed", "processing", "ready"]
    assert flow.active_statuses == [s for s in flow.statuses if s not in ("completed", "cancelled")]
    assert flow.is_active("ready") and not flow.is_active("cancelled")
    assert flow.is_table("table") and not flow.is_table("") and not flow.is_table("external")
    assert flow.table_handle_type == "table"


def test_status_roles_are_configured_per_flow():
    flow = build_order_flow(
        {
            "cancel_status": "void",
            "done_status": "",
            "active_statuses": ["new"],
            "table_handle_types": [],
            "kitchen_statuses": None,
        }
    )
    assert (flow.cancel_status, flow.done_status) == ("void", "")
    assert flow.active_statuses == ["new"] and flow.kitchen_statuses == []
    assert not flow.is_table("table") and flow.table_handle_type == ""


def test_validate_order_flow_checks_the_status_roles():
    assert validate_order_flow({"done_status": "completed", "kitchen_statuses": ["ready"], "active_statuses": None}) == []
    assert validate_order_flow({"cancel_status": "void", "kitchen_statuses": ["ready", "oven"], "table_handle_types": [""]}) == [
        "order_flow.table_handle_types must be a list of names",
    ]
    assert validate_order_flow({"cancel_status": "void", "kitchen_statuses": ["ready", "oven"]}) == [
        "order_flow.cancel_status: unknown status 'void'",
        "order_flow.kitchen_statuses: unknown status 'oven'",
    ]
    assert validate_order_flow({"done_status": 3}) == ["order_flow.done_status must be a str"]
    assert validate_order_flow({"transitions": None}) == ["order_flow.transitions must be a dict"]
