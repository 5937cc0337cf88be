from omniman.texts import modifiers_text


def test_modifiers_text_names_each_choice():
    meta = {"modifiers": [{"group": "doneness", "option": "medium", "name": "Medium"}, {"option": "bacon"}, "without:onions", 3]}
    assert modifiers_text(meta) == "Medium · bacon · without:onions"
    assert modifiers_text(meta, ", ").startswith("Medium, bacon")
    assert modifiers_text({}) == "" and modifiers_text(None) == "" and modifiers_text({"modifiers": "xy"}) == ""
