from rnn_tui.engine.tokens import label, tokenize


def test_words_with_cjk_and_full_width_punctuation():
    assert tokenize("the dog's bone，我爱你。OK!", "word") == ["the", "dog's", "bone", "，", "我", "爱", "你", "。", "OK", "!"]
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]
    assert tokenize("   ", "word") == []


def test_labels_are_visible_and_never_empty():
    assert label(" ") == "␣" and label("\n") == "⏎" and label("") == "∅" and label("\x07") == "\\x07"
    assert label("世") == "世"
