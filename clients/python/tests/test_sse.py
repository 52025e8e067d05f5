"""The event-stream parser, offline."""

import unittest

from kernelhost import sse


class TestParse(unittest.TestCase):
    def test_messages_comments_retry_and_ids(self) -> None:
        lines = [b"retry: 200\n", b"\n", b": keep-alive\n", b"\n", b"id: 15\n", b'data: {"seq":15}\n', b"\n",
                 b"id: 20\n", b"\n", b"event: error\r\n", b"data: a\r\n", b"data: b\r\n", b"\r\n",
                 b"id: 21\n", b"data: cut off\n"]
        got = list(sse.parse(lines))
        self.assertEqual([(m.id, m.event, m.data, m.retry) for m in got], [
            (None, "message", "", 200),
            ("15", "message", '{"seq":15}', None),
            ("20", "message", "", None),
            (None, "error", "a\nb", None),
        ], "a comment yields nothing; a message the stream cut off before its blank line is not yielded")

    def test_value_without_space_and_field_without_colon(self) -> None:
        got = list(sse.parse([b"data:x\n", b"data\n", b"\n"]))
        self.assertEqual(got[0].data, "x\n")

    def test_line_too_long_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            list(sse.parse([b"data: " + b"x" * (sse.MAX_LINE + 1)]))


if __name__ == "__main__":
    unittest.main()
