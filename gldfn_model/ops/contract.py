"""The machine-readable contract of the local dynamic filter op, shared by the exporter, the plugin
build (CMake reads the same JSON file) and the tests.

Each fact is stated once. ``domain`` is the op's ONNX domain and also the TensorRT plugin namespace; ``version``
is the domain's opset version and also the plugin version. The exported node carries them a second time as the
``plugin_namespace`` / ``plugin_version`` attributes, which TensorRT's ONNX parser reads to find the plugin
creator; those are derived here (:attr:`OpContract.plugin_lookup_attributes`), never written in the JSON file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gldfn_model.common.errors import GldfnError

CONTRACT_PATH = Path(str(resources.files("gldfn_model.ops") / "contracts" / "local_dynamic_filter.json"))


class OpAttributeError(GldfnError, ValueError):
    """Op attributes outside the contract: what the plugin, the CUDA kernel and the exporter support."""


@dataclass(frozen=True)
class OpContract:
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return self.raw["name"]

    @property
    def domain(self) -> str:
        return self.raw["domain"]

    @property
    def version(self) -> int:
        return int(self.raw["version"])

    @property
    def plugin_namespace(self) -> str:
        """The namespace the plugin creator registers under: the ONNX domain."""
        return self.domain

    @property
    def plugin_version(self) -> str:
        """The version the plugin creator registers under: the op version, as the string TensorRT takes."""
        return str(self.version)

    @property
    def plugin_lookup_attributes(self) -> dict[str, str]:
        """The node attributes TensorRT's ONNX parser reads to pick the plugin creator."""
        return {"plugin_version": self.plugin_version, "plugin_namespace": self.plugin_namespace}

    @property
    def contract_version(self) -> int:
        return int(self.raw["contract_version"])

    @property
    def attribute_names(self) -> list[str]:
        """Every attribute an exported node carries: the op's own, then the plugin look-up pair."""
        return [a["name"] for a in self.raw["attributes"]] + list(self.plugin_lookup_attributes)

    def attribute(self, name: str) -> dict[str, Any]:
        for attr in self.raw["attributes"]:
            if attr["name"] == name:
                return attr
        raise KeyError(f"the op contract has no attribute {name!r}")

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.raw["inputs"]]

    @property
    def dtypes(self) -> list[str]:
        return list(self.raw["dtypes"])

    def tolerance(self, dtype: str) -> float:
        return float(self.raw["tolerances"][dtype]["max_abs_relative_to_range"])

    def validate_attributes(self, kernel_size: int, dilation: int) -> None:
        """Raise OpAttributeError when the attributes are outside what the op, its CUDA kernel and its plugin
        support: the one check of these ranges on the Python side."""
        allowed = self.attribute("kernel_size")["allowed"]
        if kernel_size not in allowed:
            raise OpAttributeError(f"kernel_size={kernel_size} is not supported; use one of {allowed}")
        dil = self.attribute("dilation")
        if not dil["min"] <= dilation <= dil["max"]:
            raise OpAttributeError(f"dilation={dilation} is outside [{dil['min']}, {dil['max']}] (the op contract's "
                                   "range)")


@lru_cache(maxsize=1)
def load_contract() -> OpContract:
    return OpContract(json.loads(CONTRACT_PATH.read_text()))
