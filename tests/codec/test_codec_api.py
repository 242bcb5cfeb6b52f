"""Both codec implementations define exactly the API written in dumpcodec/_fastcopy.pyi.

The stub is the one written API; the Cython core ``dumpcodec._fastcopy`` and the twin
``dumpcodec.copy.pure`` must both match it: the same ``__all__``, the same public
members of each class (on an instance, so attributes set in ``__init__`` count), the
same parameters of each function and method (names, kinds, defaults).  A name on one
side only fails here, whatever ``DUMPCODEC_IMPL`` says.  Also: the switch and the old
module names (``dumpcodec.codec``, ``dumpcodec.pgtypes``, ``dumpcodec.values``) give
the same objects as the new ones.
"""
import ast
import inspect
import os

import pytest

import dumpcodec
from dumpcodec import copy
from dumpcodec.copy import pure

try:
    from dumpcodec import _fastcopy
except ImportError as exc:  # pragma: no cover - CI builds it (see .ci/run)
    if os.environ.get("DUMPCODEC_IMPL") == "c":
        raise
    pytest.skip(f"the Cython core dumpcodec._fastcopy is not built ({exc})",
                allow_module_level=True)

STUB = os.path.join(os.path.dirname(dumpcodec.__file__), "_fastcopy.pyi")
IMPLS = {"c": _fastcopy, "python": pure}


def _params(args: ast.arguments):
    """(name, kind, default) of a stub function's parameters; default is ``...`` for
    "has one, any value", None-the-sentinel ``inspect.Parameter.empty`` for none."""
    out = []
    pos = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(pos) - len(args.defaults)) + args.defaults
    for a, d in zip(pos, defaults):
        kind = (inspect.Parameter.POSITIONAL_ONLY if a in args.posonlyargs
                else inspect.Parameter.POSITIONAL_OR_KEYWORD)
        out.append((a.arg, kind, d))
    for a, d in zip(args.kwonlyargs, args.kw_defaults):
        out.append((a.arg, inspect.Parameter.KEYWORD_ONLY,
                    inspect.Parameter.empty if d is None else d))
    return [(n, k, d if d is inspect.Parameter.empty else ast.literal_eval(d))
            for n, k, d in out]


def _load_stub():
    tree = ast.parse(open(STUB, encoding="utf-8").read())
    names, all_, functions, classes = set(), None, {}, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "__all__":
            all_ = ast.literal_eval(node.value)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
            functions[node.name] = _params(node.args)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            members, methods = set(), {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign):
                    members.add(item.target.id)
                elif isinstance(item, ast.FunctionDef):
                    if not item.name.startswith("__"):
                        members.add(item.name)
                    if not any(isinstance(d, ast.Name) and d.id == "property"
                               for d in item.decorator_list):
                        methods[item.name] = _params(item.args)
            classes[node.name] = (members, methods)
    return names, all_, functions, classes


STUB_NAMES, STUB_ALL, STUB_FUNCTIONS, STUB_CLASSES = _load_stub()


def _signature(obj):
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def _same_params(stub, got, where):
    assert [(n, k) for n, k, _ in stub] == [(n, k) for n, k, _ in got], where
    for (name, _, want), (_, _, have) in zip(stub, got):
        if want is inspect.Parameter.empty or want is Ellipsis:
            assert (have is inspect.Parameter.empty) == (want is inspect.Parameter.empty), \
                f"{where}: default of {name}"
        else:
            assert have == want, f"{where}: default of {name}"


def test_the_stub_defines_what_its_all_names():
    assert STUB_ALL is not None and len(STUB_ALL) == len(set(STUB_ALL))
    assert set(STUB_ALL) == STUB_NAMES


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_module_names_are_the_stubs(impl):
    mod = IMPLS[impl]
    assert sorted(mod.__all__) == sorted(STUB_ALL)
    missing = [n for n in STUB_ALL if not hasattr(mod, n)]
    assert not missing, f"{mod.__name__} lacks {missing}"


def test_the_switch_exports_the_api_of_the_active_implementation():
    assert sorted(copy.API) == sorted(STUB_ALL)
    assert sorted(copy.__all__) == sorted(["IMPL", *STUB_ALL])
    active = IMPLS[copy.IMPL]
    for name in STUB_ALL:
        assert getattr(copy, name) is getattr(active, name), name


@pytest.mark.parametrize("name", sorted(n for n in STUB_ALL if n.isupper()))
def test_constants_are_equal(name):
    assert getattr(_fastcopy, name) == getattr(pure, name)
    assert type(getattr(_fastcopy, name)) is type(getattr(pure, name))


@pytest.mark.parametrize("name", sorted(STUB_FUNCTIONS))
def test_function_parameters(name):
    stub = STUB_FUNCTIONS[name]
    c, py = _signature(getattr(_fastcopy, name)), _signature(getattr(pure, name))
    _same_params(stub, py, f"pure.{name}")
    _same_params(stub, c, f"_fastcopy.{name}")
    assert [p[2] for p in c] == [p[2] for p in py], f"{name}: defaults differ"


@pytest.mark.parametrize("name", sorted(STUB_CLASSES))
def test_class_members_and_method_parameters(name):
    members, methods = STUB_CLASSES[name]
    init = methods["__init__"][1:]                    # without self
    _same_params(init, _signature(getattr(pure, name)), f"pure.{name}()")
    for impl, mod in IMPLS.items():
        cls = getattr(mod, name)
        # Cython classes do not show their __init__ signature: call it with each
        # parameter given as the stub names it, at the twin's default.
        defaults = {p.name: p.default
                    for p in inspect.signature(getattr(pure, name)).parameters.values()}
        args = [defaults[n] for n, k, _ in init if k == inspect.Parameter.POSITIONAL_ONLY]
        kwargs = {n: defaults[n] for n, k, _ in init if k != inspect.Parameter.POSITIONAL_ONLY}
        obj = cls(*args, **kwargs)
        public = {n for n in dir(obj) if not n.startswith("_")}
        assert public == members, f"{impl} {name}: extra {public - members}, " \
                                  f"missing {members - public}"
        for meth, params in methods.items():
            if meth.startswith("__"):
                continue
            _same_params(params, _signature(getattr(cls, meth)), f"{impl} {name}.{meth}")


def test_old_module_names_give_the_same_objects():
    from dumpcodec import codec, pgtypes, values
    from dumpcodec.copy import types
    from dumpcodec.copy import values as new_values
    from dumpcodec.copy.types import numeric
    assert codec.IMPL == copy.IMPL == dumpcodec.IMPL
    for name in copy.__all__:
        assert getattr(codec, name) is getattr(copy, name), name
    for name in types.__all__:
        assert getattr(pgtypes, name) is getattr(types, name), name
    assert pgtypes.encode_numeric is numeric.encode_numeric
    assert pgtypes.CODEC_INT4 == types.core.CODEC_INT4
    for name in new_values.__all__:
        assert getattr(values, name) is getattr(new_values, name), name
