"""Mappings: checked like Elasticsearch checks them, and documents parsed into indexed values.

Field types modelled: keyword, text (searchable by ``match``, text.py), binary,
dense_vector (float), boolean, long/integer/short/byte, double/float, and
objects (``properties``, ``enabled``, ``dynamic``). Anything else is refused
loudly rather than approximated.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import EsError, bad_request, unsupported

MAX_TERM_BYTES = 32766
MAX_DIMS = 4096
INTEGERS = {"long", "integer", "short", "byte"}
FLOATS = {"double", "float"}
SIMILARITIES = {"cosine", "dot_product", "l2_norm", "max_inner_product"}
HNSW_TYPES = {"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"}
FLAT_TYPES = {"flat", "int8_flat", "int4_flat", "bbq_flat"}
METADATA_FIELDS = {"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term", "_ignored", "_doc_count", "_field_names", "_tier", "_data_stream_timestamp"}

COMMON = {"type", "meta"}
PARAMS = {
    "keyword": COMMON | {"index", "doc_values", "ignore_above", "null_value", "store", "eager_global_ordinals", "norms", "similarity", "index_options", "split_queries_on_whitespace"},
    "text": COMMON | {"index", "store", "norms", "analyzer", "search_analyzer", "index_options", "similarity", "position_increment_gap"},
    "binary": COMMON | {"doc_values", "store"},
    "dense_vector": COMMON | {"dims", "element_type", "index", "similarity", "index_options"},
    "boolean": COMMON | {"index", "doc_values", "null_value", "store"},
    **{t: COMMON | {"index", "doc_values", "null_value", "store", "coerce", "ignore_malformed"} for t in INTEGERS | FLOATS},
}
UNSUPPORTED_PARAMS = {"fields", "copy_to", "normalizer", "script", "on_script_error", "time_series_dimension", "time_series_metric"}
ROOT_KEYS = {"properties", "dynamic", "_meta", "_source", "dynamic_templates", "date_detection", "numeric_detection", "_routing", "enabled"}
OBJECT_KEYS = {"type", "properties", "enabled", "dynamic", "subobjects"}


def mapper_error(reason: str) -> EsError:
    return bad_request(reason, type="mapper_parsing_exception")


@dataclass
class Field:
    path: str
    type: str
    params: dict[str, Any]

    @property
    def indexed(self) -> bool:
        return self.params.get("index", True) is not False


@dataclass
class Mapping:
    """A compiled mapping: leaf fields by dotted path, objects and their ``dynamic`` setting."""

    raw: dict[str, Any]
    fields: dict[str, Field] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # "" is the root

    @classmethod
    def parse(cls, raw: Any) -> Mapping:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise mapper_error("Failed to parse mapping: mappings must be an object")
        raw = json.loads(json.dumps(raw))  # our own copy
        unknown = [k for k in raw if k not in ROOT_KEYS]
        if unknown:
            raise mapper_error(f"Root mapping definition has unsupported parameters:  [{unknown[0]} : {raw[unknown[0]]}]")
        if raw.get("dynamic_templates"):
            raise unsupported("dynamic_templates")
        source = raw.get("_source", {})
        if not isinstance(source, dict) or set(source) - {"enabled", "includes", "excludes", "mode"}:
            raise mapper_error(f"unsupported _source mapping {source!r}")
        if source.get("mode") not in (None, "stored") or source.get("enabled") is False:
            raise unsupported("synthetic or disabled _source")
        mapping = cls(raw)
        mapping.objects[""] = {"dynamic": _dynamic(raw.get("dynamic", True)), "enabled": True}
        mapping._walk(raw.get("properties", {}), "", mapping.objects[""]["dynamic"])
        return mapping

    def _walk(self, properties: Any, prefix: str, dynamic: Any) -> None:
        if not isinstance(properties, dict):
            raise mapper_error(f"Expected map for property [properties] on field [{prefix or '_doc'}]")
        for name, spec in properties.items():
            path = f"{prefix}{name}"
            if not isinstance(spec, dict):
                raise mapper_error(f"Expected map for property [fields] on field [{path}] but got a {type(spec).__name__}")
            kind = spec.get("type", "object" if "properties" in spec or "type" not in spec else None)
            if kind == "object":
                extra = [k for k in spec if k not in OBJECT_KEYS]
                if extra:
                    raise mapper_error(f"unknown parameter [{extra[0]}] on mapper [{path}] of type [object]")
                enabled = spec.get("enabled", True)
                if not isinstance(enabled, bool):
                    raise mapper_error(f"Failed to parse value [{enabled}] as only [true] or [false] are allowed.")
                child_dynamic = _dynamic(spec.get("dynamic", dynamic))
                self.objects[path] = {"dynamic": child_dynamic, "enabled": enabled}
                if enabled:
                    self._walk(spec.get("properties", {}), path + ".", child_dynamic)
                continue
            if kind not in PARAMS:
                if kind in {"nested", "date", "date_nanos", "flattened", "match_only_text", "wildcard", "ip", "geo_point", "sparse_vector", "semantic_text", "half_float", "scaled_float", "unsigned_long", "constant_keyword"}:
                    raise unsupported(f"field type [{kind}]")
                raise mapper_error(f"No handler for type [{kind}] declared on field [{name}]")
            for key in spec:
                if key in UNSUPPORTED_PARAMS:
                    raise unsupported(f"mapping parameter [{key}]")
                if key not in PARAMS[kind]:
                    raise mapper_error(f"unknown parameter [{key}] on mapper [{name}] of type [{kind}]")
            if kind == "dense_vector":
                _check_dense_vector(name, spec)
            if kind == "text" and spec.get("analyzer", "standard") != "standard":
                raise unsupported("text analyzers other than standard")
            self.fields[path] = Field(path, kind, spec)

    def set_dims(self, path: str, dims: int) -> None:
        """dims learned from the first vector, written back as ES does (a mapping update)."""
        self.fields[path].params["dims"] = dims
        spec: dict[str, Any] = self.raw
        for part in path.split("."):
            spec = spec["properties"][part]
        spec["dims"] = dims


def _dynamic(value: Any) -> Any:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    if value == "strict":
        return "strict"
    if value == "runtime":
        raise unsupported("dynamic: runtime")
    raise mapper_error(f"Could not convert [dynamic] to boolean: {value}")


def _check_dense_vector(name: str, spec: dict[str, Any]) -> None:
    dims = spec.get("dims")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMS):
        raise mapper_error(f"The number of dimensions should be in the range [1, {MAX_DIMS}] but was [{dims}]")
    if spec.get("element_type", "float") != "float":
        raise unsupported(f"dense_vector element_type [{spec['element_type']}]")
    indexed = spec.get("index", True)
    if not isinstance(indexed, bool):
        raise mapper_error(f"Failed to parse value [{indexed}] as only [true] or [false] are allowed.")
    similarity = spec.get("similarity")
    if similarity is not None:
        if not indexed:
            raise mapper_error("Field [similarity] can only be specified for a field of type [dense_vector] when it is indexed")
        if similarity not in SIMILARITIES:
            raise mapper_error(f"Unknown value [{similarity}] for field [similarity] - accepted values are {sorted(SIMILARITIES)}")
    options = spec.get("index_options")
    if options is not None:
        if not indexed:
            raise mapper_error("Field [index_options] can only be specified for a field of type [dense_vector] when it is indexed")
        if not isinstance(options, dict) or "type" not in options:
            raise mapper_error("[index_options] requires field [type] to be configured")
        kind = options["type"]
        if kind not in HNSW_TYPES | FLAT_TYPES:
            raise mapper_error(f"Unknown vector index options type [{kind}] for field [{name}]")
        allowed = {"type", "rescore_vector"} | ({"m", "ef_construction"} if kind in HNSW_TYPES else set())
        allowed |= {"confidence_interval"} if kind.startswith(("int8", "int4")) else set()
        for key in options:
            if key not in allowed:
                raise mapper_error(f"Mapping definition for [{name}] has unsupported parameters:  [{key} : {options[key]}]")
        if kind.startswith("int4") and dims is not None and dims % 2:
            raise mapper_error(f"int4_hnsw only supports even dimensions; provided={dims}")
        if kind.startswith("bbq") and dims is not None and dims < 64:
            raise mapper_error(f"bbq_hnsw does not support dimensions fewer than 64; provided={dims}")


# ---- documents ---------------------------------------------------------------------------------


@dataclass
class ParsedDoc:
    """What a document contributes to the index: values per leaf field, vectors per field."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    new_dims: dict[str, int] = field(default_factory=dict)


def doc_error(doc_id: str, reason: str, type: str = "document_parsing_exception") -> EsError:
    return EsError(400, type, f"[1:1] {reason}" if type == "document_parsing_exception" else reason)


def parse_document(mapping: Mapping, source: Any, doc_id: str) -> ParsedDoc:
    if not isinstance(source, dict):
        raise bad_request("The document source must be a JSON object", type="not_x_content_exception")
    out = ParsedDoc()
    _parse_object(mapping, source, "", out, doc_id)
    return out


def _parse_object(mapping: Mapping, obj: dict[str, Any], prefix: str, out: ParsedDoc, doc_id: str) -> None:
    for key, value in obj.items():
        if not prefix and key in METADATA_FIELDS:
            raise doc_error(doc_id, f"Field [{key}] is a metadata field and cannot be added inside a document. Use the index API request parameters.")
        if not key.strip(".") or key.strip() == "":
            raise doc_error(doc_id, "field name cannot be an empty string")
        path = prefix + key
        _parse_value(mapping, path, value, out, doc_id)


def _parse_value(mapping: Mapping, path: str, value: Any, out: ParsedDoc, doc_id: str) -> None:
    spec = mapping.fields.get(path)
    if spec is None:
        obj = mapping.objects.get(path)
        if obj is not None:
            if not obj["enabled"] or value is None:
                return
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise doc_error(doc_id, f"object mapping for [{path}] tried to parse field [{path.rsplit('.', 1)[-1]}] as object, but found a concrete value")
                _parse_object(mapping, item, path + ".", out, doc_id)
            return
        _unmapped(mapping, path, value, out, doc_id)
        return
    if spec.type == "dense_vector":
        _parse_vector(mapping, spec, value, out, doc_id)
        return
    for item in _flatten(value):
        if item is None:
            item = spec.params.get("null_value")
            if item is None:
                continue
        if isinstance(item, dict):
            raise doc_error(doc_id, f"failed to parse field [{path}] of type [{spec.type}] in document with id '{doc_id}'. Preview of field's value: '{item}'")
        parsed = _leaf(spec, item, doc_id)
        if parsed is not _SKIP:
            out.values.setdefault(path, []).append(parsed)


def _unmapped(mapping: Mapping, path: str, value: Any, out: ParsedDoc, doc_id: str) -> None:
    """A field the mapping does not know: follow the nearest object's ``dynamic`` setting."""
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    while parent and parent not in mapping.objects:
        parent = parent.rsplit(".", 1)[0] if "." in parent else ""
    obj = mapping.objects[parent]
    if not obj["enabled"]:
        return
    if obj["dynamic"] == "strict":
        raise EsError(
            400,
            "strict_dynamic_mapping_exception",
            f"[1:2] mapping set to strict, dynamic introduction of [{path[len(parent) + 1 if parent else 0:].split('.')[0]}] within [{parent or '_doc'}] is not allowed",
        )
    if obj["dynamic"] is False:
        return
    raise unsupported(f"dynamic mapping (field [{path}] is not in the mapping; map it or use dynamic: strict/false)")


_SKIP = object()


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [x for item in value for x in _flatten(item)]
    return [value]


def _leaf(spec: Field, item: Any, doc_id: str) -> Any:
    def fail() -> EsError:
        return doc_error(doc_id, f"failed to parse field [{spec.path}] of type [{spec.type}] in document with id '{doc_id}'. Preview of field's value: '{item}'")

    if spec.type == "keyword":
        text = _as_keyword(item)
        ignore_above = spec.params.get("ignore_above")
        if ignore_above is not None and len(text) > ignore_above:
            return _SKIP
        if len(text.encode("utf-8", "surrogatepass")) > MAX_TERM_BYTES:
            raise bad_request(
                f'Document contains at least one immense term in field="{spec.path}" (whose UTF8 encoding is longer than '
                f"the max length {MAX_TERM_BYTES}), all of which were skipped. Please correct the analyzer to not produce such terms."
            )
        return text
    if spec.type == "text":
        if isinstance(item, (str, int, float)) and not isinstance(item, bool):
            return str(item)
        if isinstance(item, bool):
            return "true" if item else "false"
        raise fail()
    if spec.type == "binary":
        if not isinstance(item, str):
            raise fail()
        try:
            base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise fail() from None
        return _SKIP  # stored in _source only; not searchable
    if spec.type == "boolean":
        if item in (True, "true"):
            return True
        if item in (False, "false", ""):
            return False
        raise fail()
    number = _as_number(item, spec.params.get("coerce", True))
    if number is None:
        if spec.params.get("ignore_malformed"):
            return _SKIP
        raise fail()
    if spec.type in INTEGERS:
        if not math.isfinite(number) or abs(number) >= 2**63:
            raise fail()
        return float(int(number))  # coerce truncates
    if spec.type == "float":
        return float(np.float32(number))
    return number


def _as_keyword(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return json.dumps(item)
    return str(item)


def _as_number(item: Any, coerce: bool) -> float | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, (int, float)):
        return float(item)
    if isinstance(item, str) and coerce:
        try:
            return float(item)
        except ValueError:
            return None
    return None


def _parse_vector(mapping: Mapping, spec: Field, value: Any, out: ParsedDoc, doc_id: str) -> None:
    if value is None:
        return
    name = spec.path
    if not isinstance(value, list) or not value or not set(map(type, value)) <= {int, float}:
        raise doc_error(doc_id, f"failed to parse field [{name}] of type [dense_vector] in document with id '{doc_id}'. Preview of field's value: '{str(value)[:100]}'")
    vector = np.asarray(value, dtype=np.float32)
    dims = spec.params.get("dims") or out.new_dims.get(name)
    if dims is None:
        out.new_dims[name] = len(vector)
    elif len(vector) != dims:
        raise doc_error(
            doc_id,
            f"The [dense_vector] field [{name}] in doc [document with id '{doc_id}'] has a different number of dimensions "
            f"[{len(vector)}] than defined in the mapping [{dims}]",
        )
    if spec.indexed:
        check_similarity(spec.params.get("similarity", "cosine"), vector, doc_error_fn=lambda r: doc_error(doc_id, r))
    out.vectors[name] = vector


def check_similarity(similarity: str, vector: np.ndarray, doc_error_fn=bad_request) -> None:
    """ES refuses zero vectors for cosine and non-unit vectors for float dot_product."""
    preview = "[" + ", ".join(str(float(x)) for x in vector[:10]) + (", ..." if len(vector) > 10 else "") + "]"
    squared = float(np.dot(vector.astype(np.float64), vector.astype(np.float64)))
    if similarity == "cosine" and squared == 0.0:
        raise doc_error_fn(f"The [cosine] similarity does not support vectors with zero magnitude. Preview of invalid vector: {preview}")
    if similarity == "dot_product" and abs(squared - 1.0) > 1e-4:
        raise doc_error_fn(f"The [dot_product] similarity can only be used with unit-length vectors. Preview of invalid vector: {preview}")
