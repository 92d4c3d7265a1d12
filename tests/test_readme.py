"""The README's quickstart runs as written and trains."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_quickstart_trains():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    loss, x, y = namespace["loss"], namespace["x"], namespace["y"]
    initial = namespace["model"].init(namespace["jax"].random.key(1), x[:1])
    assert float(loss(namespace["anchor"], x, y)) < 0.5 * float(loss(initial, x, y))


def test_readme_commands_match_ci():
    text = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = re.search(r"The tests:\n\n```bash\n(.*?)\n```", text, re.S).group(1)
    assert test_command in ci
