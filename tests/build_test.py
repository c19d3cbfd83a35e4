"""BUILD stays in sync with the code: one target per file, deps = imports."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Top-level import name -> pip requirement (as in the constraints file).
PIP_NAMES = {
    'absl': 'absl-py', 'acme': 'dm-acme', 'dm_control': 'dm-control',
    'dm_env': 'dm-env', 'imageio': 'imageio', 'launchpad': 'dm-launchpad',
    'matplotlib': 'matplotlib', 'mujoco': 'mujoco', 'numpy': 'numpy',
    'PIL': 'pillow', 'psutil': 'psutil', 'pytest': 'pytest',
    'reverb': 'dm-reverb', 'sonnet': 'dm-sonnet', 'tensorflow': 'tensorflow',
    'tensorflow_probability': 'tensorflow-probability', 'tqdm': 'tqdm',
    'tree': 'dm-tree', 'trfl': 'trfl', 'portpicker': 'portpicker',
    'courier': 'dm-launchpad', 'cloudpickle': 'cloudpickle',
    'tensorflow_datasets': 'tensorflow-datasets', 'rlds': 'rlds',
}


def target_name(module: str) -> str:
  """acme_metamimic.environments.jaco_stack -> environments_jaco_stack."""
  parts = module.split('.')[1:]
  if parts and parts[-1] == '__init__':
    parts = parts[:-1]
  return '_'.join(parts) or 'acme_metamimic'


def imports_of(path: str):
  """(internal module names, external top-level packages) imported by path."""
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  internal, external = set(), set()
  for node in ast.walk(tree):
    names = []
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      if node.module == 'acme_metamimic' or (
          node.module.startswith('acme_metamimic.') and
          not os.path.exists(os.path.join(
              ROOT, node.module.replace('.', '/') + '.py')) and
          os.path.isdir(os.path.join(ROOT, node.module.replace('.', '/')))):
        names = [f'{node.module}.{alias.name}' for alias in node.names]
      else:
        names = [node.module]
    for name in names:
      top = name.split('.')[0]
      if top == 'acme_metamimic':
        internal.add(name)
      elif top in PIP_NAMES:
        external.add(top)
  return internal, external


def _parse_build(source: str):
  """(targets by name, names defined more than once) of BUILD text `source`.

  The targets land in a dict, where a second target of the same name would
  replace the first: the tests would check only the later one, while Bazel
  refuses the file. So repeated names are collected, not overwritten.
  """
  targets, duplicates = {}, []

  def rule(kind):
    def add(name, srcs, deps=(), **unused_kwargs):
      if name in targets:
        duplicates.append(name)
      else:
        targets[name] = (kind, srcs, set(deps))
    return add

  scope = dict(load=lambda *args: None, package=lambda **kwargs: None,
               requirement=lambda name: f'pip:{name}',
               py_library=rule('py_library'), py_binary=rule('py_binary'),
               py_test=rule('py_test'))
  exec(compile(source, 'BUILD', 'exec'), scope)  # pylint: disable=exec-used
  return targets, duplicates


def _build_source():
  with open(os.path.join(ROOT, 'BUILD')) as f:
    return f.read()


def _build_targets():
  """BUILD's targets by name; fails if a name is defined twice."""
  targets, duplicates = _parse_build(_build_source())
  assert not duplicates, f'BUILD defines targets more than once: {duplicates}'
  return targets


def _python_files(directory):
  for dirpath, _, filenames in os.walk(os.path.join(ROOT, directory)):
    for filename in filenames:
      if filename.endswith('.py') and filename != 'conftest.py':
        yield os.path.relpath(os.path.join(dirpath, filename), ROOT)


def test_every_python_file_has_a_target_whose_deps_match_its_imports():
  targets = _build_targets()
  firsts = [srcs[0] for _, srcs, _ in targets.values()]
  shared = sorted({src for src in firsts if firsts.count(src) > 1})
  assert not shared, f'BUILD has more than one target for {shared}'
  by_src = {srcs[0]: (name, kind, deps)
            for name, (kind, srcs, deps) in targets.items()}
  expected_kind = {'acme_metamimic': 'py_library', 'launch': 'py_binary',
                   'bench': 'py_binary', 'tests': 'py_test'}
  for directory, kind in expected_kind.items():
    for src in _python_files(directory):
      assert src in by_src, f'BUILD has no target for {src}'
      name, actual_kind, deps = by_src[src]
      assert actual_kind == kind, (src, actual_kind)
      internal, external = imports_of(os.path.join(ROOT, src))
      expected = {':' + target_name(m) for m in internal}
      expected |= {f'pip:{PIP_NAMES[e]}' for e in external}
      assert deps == expected, (
          f'BUILD target {name!r} ({src}): deps {sorted(deps)} do not match '
          f'its imports {sorted(expected)}')
  for name, (_, srcs, deps) in targets.items():
    for dep in deps:
      if dep.startswith(':'):
        assert dep[1:] in targets, f'{name} depends on unknown target {dep}'
    assert all(os.path.exists(os.path.join(ROOT, s)) for s in srcs), name


def test_target_names_are_unique_and_bazel_safe():
  targets = _build_targets()  # Fails on a name defined twice.
  for name in targets:
    assert re.fullmatch(r'[a-z0-9_]+', name), name


def test_a_repeated_target_name_is_reported_not_overwritten():
  targets, duplicates = _parse_build(
      'py_library(name = "a", srcs = ["a.py"])\n'
      'py_library(name = "b", srcs = ["b.py"])\n'
      'py_test(name = "a", srcs = ["a_test.py"])\n')
  assert duplicates == ['a']
  assert targets['a'] == ('py_library', ['a.py'], set())


def test_every_attribute_read_from_a_project_module_exists():
  """`module.name` on an imported project module names something it defines.

  Catches a function moved between modules while a caller (often a launch
  script no unit test imports) still reads it from the old place.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  missing = []
  for directory in ('acme_metamimic', 'launch', 'bench', 'tests'):
    for src in _python_files(directory):
      with open(os.path.join(ROOT, src)) as f:
        tree = ast.parse(f.read(), src)
      modules = {}
      for node in ast.walk(tree):
        if (isinstance(node, ast.ImportFrom) and node.module and
            node.module.split('.')[0] == 'acme_metamimic'):
          for alias in node.names:
            full = f'{node.module}.{alias.name}'
            if os.path.exists(os.path.join(ROOT, full.replace('.', '/') + '.py')):
              modules[alias.asname or alias.name] = full
      for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and
            isinstance(node.value, ast.Name) and node.value.id in modules):
          module = importlib.import_module(modules[node.value.id])
          if not hasattr(module, node.attr):
            missing.append(f'{src}:{node.lineno}: '
                           f'{modules[node.value.id]} has no {node.attr!r}')
  assert not missing, '\n'.join(missing)
