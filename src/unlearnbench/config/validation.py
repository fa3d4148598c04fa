"""Config checks that run before any job: YAML syntax (file and line), finite numbers, and the JSON schema with its
defaults filled in, each problem reported in one paragraph naming the config key, what is allowed, and the fix.

`validate(config, schema)` replaces `snakemake.utils.validate`: it fills the schema's defaults exactly as Snakemake
does (jsonschema's documented default-setting `properties` validator; tests/test_faults.py compares the filled
configs), but reports the most relevant error in one paragraph instead of Snakemake's dump of the whole config and
schema. `unlearnbench.config.plan.parse` then checks what a schema cannot see.

A YAML syntax error in a `--configfile` is reported by Snakemake itself before the workflow's code runs, as "Config
file is not valid JSON or YAML", naming neither file nor line; `python -m unlearnbench.config.validation FILE...` reads
the same files and names file, line and column (the Snakefile does this itself for the embedded config.yaml).

Torch-free: the Snakefile process imports it.
"""
from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import yaml

from ..core.errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schema.yaml"


# ------------------------------------------------------------------------------------------------- YAML

class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last one silently)."""


def _mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged keys may be overridden here
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise ConfigError(f"{mark.name}, line {mark.line + 1}: key {key!r} is given twice in one mapping (first on "
                              f"line {seen[key] + 1}); YAML would silently keep the last one: delete one of them")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: str | Path) -> dict:
    """A config file as a dict; a syntax error or a duplicated key is a ConfigError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read this config file ({exc})") from exc
    try:
        loader = _StrictLoader(text)
        loader.name = str(path)  # marks (line numbers) name the file
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        hint = " (a tab in the indentation? YAML indents with spaces only)" if "\t" in text else ""
        raise ConfigError(f"{where}: YAML syntax error: {problem}{hint}; fix the file there") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {exc}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds keys at its top level (a mapping), not a "
                          f"{type(data).__name__}")
    return data


def check_files(paths) -> None:
    """load_yaml each config file that exists (Snakemake reports a missing one; YTE templates, which Snakemake
    renders first, are skipped)."""
    for path in paths:
        if Path(path).is_file() and "__use_yte__" not in Path(path).read_text(encoding="utf-8", errors="replace"):
            load_yaml(path)


# ------------------------------------------------------------------------------------------------- numbers

def check_finite(config) -> None:
    """Every number in the config is finite: JSON-schema bounds let NaN through (every comparison with NaN is
    false), and YAML reads `.nan` / `.inf` as floats."""
    stack = [("", config)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where or 'config'}: {value!r} is not a finite number; give a finite value "
                              f"(YAML `.nan` / `.inf` are not allowed anywhere in the config)")


# ------------------------------------------------------------------------------------------------- schema

def _validator(schema: dict):
    """Draft 2020-12 with the schema's defaults filled in, as snakemake.utils.validate(set_default=True) does
    (jsonschema FAQ: extend the `properties` validator); defaults are copied, not shared between keys."""
    from jsonschema import Draft202012Validator, validators

    validate_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema_)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _short(value, limit: int = 80) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed(schema: dict) -> str:
    """What a (sub)schema allows, in words."""
    if "enum" in schema:
        return "one of " + ", ".join(_short(v) for v in schema["enum"])
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    words = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
             "object": "a mapping", "array": "a list", "null": "null"}
    text = " or ".join(words.get(k, k) for k in kinds)
    bounds = [f">= {schema['minimum']}" if "minimum" in schema else "",
              f"> {schema['exclusiveMinimum']}" if "exclusiveMinimum" in schema else "",
              f"<= {schema['maximum']}" if "maximum" in schema else "",
              f"< {schema['exclusiveMaximum']}" if "exclusiveMaximum" in schema else ""]
    bounds = [b for b in bounds if b]
    if bounds:
        text = f"{text or 'a value'} {' and '.join(bounds)}"
    return text


def _describe(error) -> str:
    if error.parent is not None and error.parent.validator in ("oneOf", "anyOf") \
            and list(error.parent.absolute_path) == list(error.absolute_path):
        error = error.parent  # the value fits none of the alternatives: name them all
    v, schema, inst = error.validator, error.schema, error.instance
    where = _key(error.absolute_path) or "config (top level)"
    if v == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in schema.get("properties", {}))
        key = f"{_key(error.absolute_path)}.{extra[0]}" if error.absolute_path else str(extra[0])
        return f"{key}: unknown key; allowed keys here: {', '.join(known)}"
    if v == "required":
        missing = [k for k in error.validator_value if k not in inst]
        return f"{where}: the key {missing[0]!r} is required here and missing"
    if "propertyNames" in error.absolute_schema_path:  # a name (key) that is not allowed, e.g. datasets.Digits
        if v == "pattern":
            return (f"{where}: the name {inst!r} is not allowed: names here are lowercase letters, digits and _, "
                    f"starting with a letter ({error.validator_value})")
        if v == "not":
            return f"{where}: the name {inst!r} is reserved (the pipeline's own runs retrain and original); rename it"
        return f"{where}: the name {inst!r} is not allowed: {error.message}"
    if v in ("oneOf", "anyOf"):
        description = schema.get("description")
        options = [_allowed(s) for s in error.validator_value]
        return (f"{where}: got {_short(inst)}; allowed: {' | '.join(o for o in options if o)}"
                + (f" ({description.strip()})" if description else ""))
    if v in ("enum", "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "const"):
        allowed = _allowed(schema)
        return f"{where}: got {_short(inst)}; allowed: {allowed}"
    if v in ("minProperties", "minItems"):
        return f"{where}: needs at least {error.validator_value} entr{'y' if error.validator_value == 1 else 'ies'}"
    if v == "uniqueItems":
        return f"{where}: items must be distinct, got {_short(inst)}"
    return f"{where}: {error.message}"


def validate(config: dict, schema: str | Path = SCHEMA) -> dict:
    """Check `config` against the JSON schema and fill in its defaults (in place; also returned). Non-finite numbers
    and every schema violation are a one-paragraph ConfigError naming the key, what is allowed and the fix."""
    from jsonschema.exceptions import best_match

    check_finite(config)
    schema_path = Path(schema)
    try:
        shown = schema_path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = schema_path
    with open(schema_path, encoding="utf-8") as f:
        schema_doc = yaml.safe_load(f)
    errors = list(_validator(schema_doc).iter_errors(config))  # consumed in full: every default is filled
    if errors:
        error = best_match(errors)
        description = error.schema.get("description") if isinstance(error.schema, dict) else None
        note = f" About this key: {' '.join(description.split())}" if description and error.absolute_path and \
            error.validator not in ("oneOf", "anyOf", "additionalProperties") else ""
        raise ConfigError(f"{_describe(error)}. Fix the config file (or --config); every key with its allowed "
                          f"values and defaults: {shown}.{note}")
    return config


# ------------------------------------------------------------------------------------------------- command line

def main(argv=None) -> int:
    """python -m unlearnbench.config.validation FILE...: every check the workflow runs before its first job, on each config
    file as a complete config (as `--configfile FILE` uses it), naming the file and line of a YAML error."""
    import argparse

    from .plan import parse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.files:
        try:
            config = validate(load_yaml(path))
            plan = parse(config)
        except ConfigError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: ok ({len(plan.experiments)} experiments, {len(plan.seeds)} seeds, {len(plan.runs)} runs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
