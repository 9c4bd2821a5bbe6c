"""The layers the README draws are the import graph: protocol (with the stream model,
svga/stream) -> device facts -> transports (the software model and the recorder) -> driver ->
tools. Every ``import`` in svga/ (module level or inside a function) is read with ast and no
module may import one of a higher layer, nor name one to importlib at run time."""

import ast
from pathlib import Path

SVGA = Path(__file__).resolve().parent.parent / "svga"
LAYERS = {  # module prefix -> layer, most specific first
    "svga.errors": 0, "svga.registers": 0, "svga.commands": 0, "svga.pixels": 0, "svga.stream": 0,
    "svga.native": 0,
    "svga.facts": 1,
    "svga.transport": 2, "svga.model": 2,
    "svga.fifo": 3, "svga.device": 3,
    "svga.tools": 4, "svga.captures": 4, "svga.lab": 4, "svga.qa": 4, "svga.__main__": 4,
}
NAMES = ["protocol", "device facts", "transport", "driver", "tools"]


def layer(module: str) -> int | None:
    for prefix, n in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return n
    return None


def modules():
    for path in sorted(SVGA.rglob("*.py")):
        rel = path.relative_to(SVGA.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def run_time_imports(path):
    """Module names given as constants to importlib.import_module() or __import__()."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.args[0].value


def test_every_module_has_a_layer():
    assert [name for name, _ in modules() if name != "svga" and layer(name) is None] == []


def test_nothing_below_reaches_up():
    bad = []
    for name, path in modules():
        mine = layer(name)
        if mine is None:
            continue
        for target in imports(path):
            theirs = layer(target)
            if theirs is not None and theirs > mine:
                bad.append(f"{name} ({NAMES[mine]}) imports {target} ({NAMES[theirs]})")
    assert bad == []


def test_the_facts_layer_is_what_the_model_and_the_lint_read():
    # The software model and the lint take QEMU's behaviour from svga.facts, not from each other's
    # code: the lint imports the model only as a device (svga.model), never its internals' tables.
    check = set(imports(SVGA / "tools" / "check.py"))
    assert "svga.facts.effects" in check and not any(m.startswith("svga.model.executor") for m in check)
    assert any(m.startswith("svga.facts") for m in imports(SVGA / "model" / "executor.py"))


def test_no_module_reaches_up_at_run_time():
    bad = [f"{name} ({NAMES[layer(name)]}) loads {target} ({NAMES[layer(target)]}) through importlib"
           for name, path in modules() if layer(name) is not None
           for target in run_time_imports(path)
           if layer(target) is not None and layer(target) > layer(name)]
    assert bad == []


def test_the_driver_imports_the_recorder_as_a_transport():
    # open_device(record=...) wraps its transport in svga.transport.recorder with a plain import,
    # and the recorder needs nothing above the transport layer (the stream model is protocol).
    device = SVGA / "device.py"
    assert "svga.transport.recorder" in set(imports(device))
    assert not [m for m in run_time_imports(device) if "recorder" in m or m.startswith("svga.captures")]
    recorder = set(imports(SVGA / "transport" / "recorder.py"))
    assert {"svga.stream.binary", "svga.stream.capture", "svga.stream.items"} <= recorder
    assert all(layer(m) is None or layer(m) <= 2 for m in recorder)
