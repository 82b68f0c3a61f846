"""Reading `Settings` from environment variables with pydantic-settings (called by `Settings.from_env`).

Each settings dataclass of `ai_worker.config` is turned into a pydantic-settings model whose fields are its own
fields, named by their variables (`AI_WORKER_<FIELD>`, or what an `Env` marker says, plus legacy and deprecated
names); the environment fills it, pydantic validates each value against the field's type and limits, and the
dataclass is built from the result. Variables the environment leaves unset keep the dataclass default, so each
default is written once, in `ai_worker.config`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from ai_worker.config import ConfigError, Env, Settings
from ai_worker.tiers import TIERS

log = logging.getLogger(__name__)
T = TypeVar("T")
# The pydantic names the settings' annotations use; `ai_worker.config` imports them for type checking only.
ANNOTATION_NAMES: Mapping[str, Any] = {"BeforeValidator": BeforeValidator, "Field": Field, "NoDecode": NoDecode}


@dataclasses.dataclass(frozen=True)
class Variable:
    """One environment variable: the field it sets, and the other names accepted for it (in precedence order)."""

    name: str
    field: str  # dotted path from Settings: "job_timeout_s", "ocr.timeout_s", "queue_names.lite"
    info: FieldInfo
    accepted: tuple[str, ...]  # every name read for the field, `name` among them
    legacy: tuple[str, ...] = ()
    deprecated: tuple[str, ...] = ()


@functools.cache
def _fields(cls: type) -> dict[str, FieldInfo]:
    """The fields of a settings dataclass as pydantic sees them: type, limits, validators, description, `Env`."""
    hints = get_type_hints(cls, localns=dict(ANNOTATION_NAMES), include_extras=True)
    fields = (f for f in dataclasses.fields(cls) if f.metadata.get("from_env", True))
    return {f.name: FieldInfo.from_annotation(hints[f.name]) for f in fields}


def _sections(cls: type) -> dict[str, type]:
    """The nested sections of `cls`: field name -> section class."""
    return {
        name: info.annotation
        for name, info in _fields(cls).items()
        if isinstance(info.annotation, type) and dataclasses.is_dataclass(info.annotation)
    }


def _own_variables(cls: type, path: str = "") -> Iterator[Variable]:
    """The variables of the fields of `cls` itself, not of its sections."""
    for name, info in _fields(cls).items():
        if name in _sections(cls):
            continue
        env = next((m for m in info.metadata if isinstance(m, Env)), Env())
        names = (env.name or cls.ENV_PREFIX + name.upper(), *env.legacy, *env.deprecated)  # type: ignore[attr-defined]
        legacy, deprecated = slice(1, 1 + len(env.legacy)), slice(1 + len(env.legacy), None)
        if "{TIER}" not in names[0]:
            yield Variable(names[0], path + name, info, names, names[legacy], names[deprecated])
            continue
        for tier in TIERS:
            tiered = tuple(n.replace("{TIER}", tier.upper()) for n in names)
            yield Variable(tiered[0], f"{path}{name}.{tier}", info, tiered, tiered[legacy], tiered[deprecated])
        if env.every_tier:
            yield Variable(env.every_tier, path + name, info, (env.every_tier,))


def variables(cls: type = Settings, path: str = "") -> Iterator[Variable]:
    """Every variable `Settings.from_env` reads, section by section (what docs/configuration.md lists)."""
    yield from _own_variables(cls, path)
    for name, section in _sections(cls).items():
        yield from variables(section, f"{path}{name}.")
    if cls is Settings:
        for job_type, section in _job_sections().items():
            yield from variables(section, f"{job_type}.")


def _job_sections() -> dict[str, type]:
    """Sections declared by registered job types that are not a field of `Settings`: job type -> section class."""
    from ai_worker.jobs import SPECS

    typed = set(_sections(Settings).values())
    return {name: spec.settings for name, spec in SPECS.items() if spec.settings and spec.settings not in typed}


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (the process environment, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=True, env_ignore_empty=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names match exactly (case_sensitive); stray spaces from templates are trimmed; blank means unset.
        return {key: value.strip() for key, value in self._environ.items() if value.strip()}


class _FromEnv(BaseSettings):
    """Base of the models `_read` builds per section: they read `environ` and nothing else."""

    model_config = SettingsConfigDict(validate_default=False)  # a field the environment leaves unset stays unset
    environ: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (_Environ(settings_cls, cls.environ),)


def _read(cls: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of `cls` (not of its sections) that `environ` sets, parsed and validated by pydantic-settings."""
    own = {var.field.replace(".", "__"): var for var in _own_variables(cls)}
    fields: dict[str, Any] = {}
    for flat, var in own.items():
        per_tier = get_origin(var.info.annotation) is dict  # one tier's variable, or the every-tier one
        annotation = get_args(var.info.annotation)[1] if per_tier else var.info.annotation
        metadata = [] if per_tier else [m for m in var.info.metadata if not isinstance(m, Env)]
        typed = Annotated[(annotation, *metadata)] if metadata else annotation
        # Each field validates from its own names only: pydantic-settings keys a value by a field's first alias.
        fields[flat] = (typed, Field(None, validation_alias=AliasChoices(*var.accepted)))
    model = create_model(f"{cls.__name__}FromEnv", __base__=_FromEnv, **fields)
    model.environ = environ
    try:
        loaded = model().model_dump(exclude_unset=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else ""
        found = next((v for flat, v in own.items() if where == flat or where in v.accepted), None)
        name = next((n for n in found.accepted if environ.get(n, "").strip()), found.name) if found else where
        raise ConfigError(f"{name}={environ.get(name, '').strip()!r}: {error['msg']}") from None
    values: dict[str, Any] = {}
    for flat, value in sorted(loaded.items(), key=lambda item: "__" not in item[0]):
        name, _, tier = flat.partition("__")
        if get_origin(own[flat].info.annotation) is not dict:
            values[name] = value
        elif tier:  # one tier, over the mapping's default
            values[name] = {**values.get(name, getattr(cls(), name)), tier: value}
        else:  # the every-tier variable (sorted last): wins over the per-tier ones
            values[name] = dict.fromkeys(TIERS, value)
    return values


def load(cls: type[T], environ: Mapping[str, str]) -> T:
    """An instance of settings dataclass `cls` (and its sections) from `environ`; `ConfigError` names a bad variable."""
    values = _read(cls, environ)
    for var in _own_variables(cls):
        for old in var.deprecated:
            if environ.get(old, "").strip():
                message = f"{old} is deprecated: set {var.name} instead ({var.name} wins when both are set)"
                warnings.warn(message, DeprecationWarning, stacklevel=3)
                log.warning(message)
    for name, section in _sections(cls).items():
        values[name] = load(section, environ)
    if cls is Settings:
        values["job_sections"] = {section: load(section, environ) for section in _job_sections().values()}
    return cls(**values)
