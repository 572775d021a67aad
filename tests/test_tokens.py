from rnn_tui.engine.tokens import label, tokenize


def test_words_with_cjk_and_full_width_punctuation():
    assert tokenize("the dog's bone，我爱你。OK!", "word") == ["the", "dog's", "bone", "，", "我", "爱", "你", "。", "OK", "!"]
    assert tokenize("ab c", "char") == ["a", "b", " ", "c"]
    assert tokenize("   ", "word") == []


def test_labels_are_visible_and_never_empty():
    assert label(" ") == "␣" and label("\n") == "⏎" and label("") == "∅" and label("\x07") == "\\x07"
    assert label("世") == "世"


def test_words_a_writer_separated_by_spaces_are_kept():
    # the lecture notes' example: nine words as written, not thirteen characters
    assert tokenize("南开 大学 很 好 ， 我 爱 南开 大学", "word") == ["南开", "大学", "很", "好", "，", "我", "爱", "南开", "大学"]
    assert tokenize("南开大学很好，我爱南开大学", "word")[:4] == ["南", "开", "大", "学"]  # written unspaced
    # judged line by line: the second line is unspaced Chinese
    assert tokenize("我 爱 NLP\n很好", "word") == ["我", "爱", "NLP", "很", "好"]


def test_a_vocabulary_reads_spaced_words_the_same_way():
    from rnn_tui.engine.vocab import split_text

    assert split_text("南开 大学\n很好\n", "word", eos=True) == ["南开", "大学", "<eos>", "很", "好", "<eos>"]
