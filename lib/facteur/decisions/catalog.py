"""The command catalog: one file defines every slash command, for registration and routing alike.

Loading validates Discord's own limits, so a catalog that Discord would refuse never starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from facteur.decisions import ids, parameter_text
from facteur.decisions.concurrency import key_problem
from facteur.decisions.interactions import safe_name
from facteur.errors import CatalogError

# Discord option types (application-commands docs).
OPTION_TYPES: dict[str, int] = {
    "subcommand": 1,
    "subcommand_group": 2,
    "string": 3,
    "integer": 4,
    "boolean": 5,
    "user": 6,
    "channel": 7,
    "role": 8,
    "mentionable": 9,
    "number": 10,
    "attachment": 11,
}
VALUE_TYPES = frozenset(range(3, 12))
CHOICE_TYPES = frozenset({3, 4, 10})
# Users, channels, roles, mentionables and attachments arrive as their snowflake IDs.
SNOWFLAKE_TYPES = frozenset({6, 7, 8, 9, 11})

# ASCII subset of Discord's CHAT_INPUT name pattern; lower case is required by Discord.
NAME_PATTERN = r"^[-_a-z0-9]{1,32}$"
MAX_COMMANDS = 100
MAX_OPTIONS = 25
MAX_CHOICES = 25
MAX_STRING_LENGTH = 6000

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Description = Annotated[str, Field(min_length=1, max_length=100)]


def _option_type(value: Any) -> int:
    if isinstance(value, str) and value.lower() in OPTION_TYPES:
        return OPTION_TYPES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in VALUE_TYPES:
        return value
    raise ValueError(f"unknown option type {value!r}; use one of {', '.join(OPTION_TYPES)}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    value: str | int | float


# Discord's modal text input: a label of at most 45 characters, a value of at most 4,000.
MAX_LABEL = 45
MAX_TEXT_INPUT = 4000
# At most five text inputs in one modal (five action rows of one input each).
MAX_FORM_FIELDS = 5
AutocompleteSource = Literal["values", "recent", "runs"]


class Autocomplete(_Model):
    """Where an option's suggestions come from (decisions/autocomplete.py):
    values: this list, longer than Discord's 25 choices, filtered by what was typed;
    recent: the values this guild used for this option lately (Redis);
    runs: the caller's own recent runs (for /status workflow)."""

    source: AutocompleteSource
    values: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=10_000
    )
    # How many suggestions are shown: Discord takes at most 25.
    shown: int = Field(MAX_CHOICES, ge=1, le=MAX_CHOICES)

    @model_validator(mode="after")
    def _values_for_values(self) -> Autocomplete:
        if self.source == "values" and not self.values:
            raise ValueError("autocomplete source values needs its values")
        if self.source != "values" and self.values:
            raise ValueError(f"autocomplete source {self.source} takes no values")
        return self


class Option(_Model):
    name: Name
    description: Description
    type: Annotated[int, BeforeValidator(_option_type)] = OPTION_TYPES["string"]
    required: bool = False
    choices: list[Choice] = Field(default_factory=list, max_length=MAX_CHOICES)
    max_length: int | None = Field(None, ge=1, le=MAX_STRING_LENGTH)
    autocomplete: Autocomplete | None = None
    # A form's label for this option (default: its name).
    label: Annotated[str, Field(min_length=1, max_length=MAX_LABEL)] | None = None

    @model_validator(mode="after")
    def _fits_type(self) -> Option:
        if self.type in (1, 2):
            raise ValueError("subcommands are not supported in the catalog yet")
        if self.choices and self.type not in CHOICE_TYPES:
            raise ValueError("choices are only allowed on string, integer and number options")
        for choice in self.choices:
            if not _matches_type(self.type, choice.value):
                raise ValueError(f"choice {choice.name!r} does not match the option's type")
            if isinstance(choice.value, str) and len(choice.value) > 100:
                raise ValueError(f"choice {choice.name!r} value is longer than 100")
        if self.max_length is not None and self.type != OPTION_TYPES["string"]:
            raise ValueError("max_length is only allowed on string options")
        if self.autocomplete is not None:
            if self.choices:
                # Discord refuses an option with both.
                raise ValueError("choices and autocomplete cannot both be set")
            if self.type != OPTION_TYPES["string"]:
                raise ValueError("autocomplete is only supported on string options here")
        return self


class Approval(_Model):
    """How an approval gate's answer reaches the template: the supplied output parameter of
    the Suspend node, and the values that mean yes and no (Argo's example enum: YES/NO)."""

    parameter: Name = "approve"
    yes: Annotated[str, Field(min_length=1, max_length=64)] = "YES"
    no: Annotated[str, Field(min_length=1, max_length=64)] = "NO"

    @model_validator(mode="after")
    def _distinct(self) -> Approval:
        if self.yes == self.no:
            raise ValueError("approval.yes and approval.no must differ")
        return self


class Concurrency(_Model):
    """One run at a time per key: an Argo mutex named after the command and the key, a
    template over the command's options such as "{project}" (decisions/concurrency.py)."""

    key: Annotated[str, Field(min_length=1, max_length=200)]


class Limits(_Model):
    """How often a command may run: per user and per guild, each "N/<window>" such as "3/10m"
    (s, m, h or d). command_route enforces them atomically in Redis."""

    per_user: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}/[1-9][0-9]{0,5}[smhd]$")] | None = (
        None
    )
    per_guild: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,5}/[1-9][0-9]{0,5}[smhd]$")] | None = (
        None
    )


class Command(_Model):
    name: Name
    description: Description
    options: list[Option] = Field(default_factory=list, max_length=MAX_OPTIONS)
    # None means argo.workflow_template.
    workflow_template: str | None = Field(None, min_length=1, max_length=253)
    ephemeral: bool = False
    # Built-ins are answered by facteur itself and start no workflow.
    builtin: bool = False
    # base64: every option reaches the workflow as the base64 of its UTF-8, with the parameter
    # `encoding=base64`, so text that looks like an Argo tag is carried too (parameter_text.py).
    parameter_encoding: parameter_text.Encoding = parameter_text.PLAIN
    # A thread from the run's message, for what would crowd it (failed steps); archived when
    # the run ends. Needs the bot's thread permissions (README).
    thread: bool = False
    # Cancel asks "Stop <run>?" first, and only the confirmation acts.
    confirm_cancel: bool = True
    # The requester may answer their own run's approval gates (the two-person rule is off).
    self_approve: bool = False
    approval: Approval = Field(default_factory=Approval)
    # How many of a step's last log lines the Logs button shows.
    log_lines: int = Field(40, ge=1, le=500)
    # One run at a time per key (an Argo mutex); None lets runs go side by side.
    concurrency: Concurrency | None = None
    # Invoked without its required options, the command opens a form (a modal) for them.
    form: bool = False
    # Cooldowns and quotas: "3/10m" is three runs in any ten minutes (decisions/limits.py).
    limits: Limits | None = None
    # The channels it may be used in (a thread counts as its parent); empty: everywhere.
    channels: list[Annotated[str, Field(pattern=r"^[1-9][0-9]{16,19}$")]] = Field(
        default_factory=list, max_length=100
    )

    @model_validator(mode="after")
    def _concurrency_names_options(self) -> Command:
        if self.concurrency is None:
            return self
        problem = key_problem(self.concurrency.key, [option.name for option in self.options])
        if problem:
            raise ValueError(f"concurrency.key {self.concurrency.key!r}: {problem}")
        return self

    @model_validator(mode="after")
    def _form_fits_a_modal(self) -> Command:
        if not self.form:
            return self
        strings = [o for o in self.options if o.type == OPTION_TYPES["string"]]
        if len(strings) > MAX_FORM_FIELDS:
            raise ValueError(
                f"a form holds at most {MAX_FORM_FIELDS} text fields; "
                f"this command has {len(strings)} string options"
            )
        other = [o.name for o in self.options if o.required and o not in strings]
        if other:
            raise ValueError(f"a form can only ask for text; required {other[0]!r} is not text")
        return self

    @model_validator(mode="after")
    def _thread_needs_a_public_run(self) -> Command:
        if self.thread and (self.builtin or self.ephemeral):
            # A thread starts from a public message of a run: built-ins and private replies
            # have neither.
            raise ValueError("thread needs a command that runs a workflow, not ephemeral")
        return self

    @model_validator(mode="after")
    def _options_in_order(self) -> Command:
        names = [option.name for option in self.options]
        if len(set(names)) != len(names):
            raise ValueError("option names must be unique")
        seen_optional = False
        for option in self.options:
            if option.required and seen_optional:
                raise ValueError(f"required option {option.name!r} must come before optional ones")
            seen_optional = seen_optional or not option.required
        return self

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)

    def to_discord(self) -> dict[str, Any]:
        """The ApplicationCommand payload for Discord's bulk overwrite."""
        return {
            "name": self.name,
            "description": self.description,
            "type": 1,
            "options": [_option_to_discord(option, form=self.form) for option in self.options],
        }


class Catalog(_Model):
    version: Literal[1] = 1
    commands: list[Command] = Field(min_length=1, max_length=MAX_COMMANDS)

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        names = [command.name for command in self.commands]
        if len(set(names)) != len(names):
            raise ValueError("command names must be unique")
        return self

    def get(self, name: str) -> Command | None:
        return next((command for command in self.commands if command.name == name), None)


def _option_to_discord(option: Option, *, form: bool = False) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": option.type,
        "name": option.name,
        "description": option.description,
        # Discord's client will not send a command without its required options, so a form's
        # command registers none as required: sent bare, it opens the form, and facteur checks
        # what is required (check_options) whichever way the options come.
        "required": option.required and not form,
    }
    if option.choices:
        payload["choices"] = [choice.model_dump() for choice in option.choices]
    if option.max_length is not None:
        payload["max_length"] = option.max_length
    if option.autocomplete is not None:
        payload["autocomplete"] = True
    return payload


def _matches_type(option_type: int, value: Any) -> bool:
    if option_type == OPTION_TYPES["boolean"]:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if option_type == OPTION_TYPES["integer"]:
        return isinstance(value, int)
    if option_type == OPTION_TYPES["number"]:
        return isinstance(value, int | float)
    # Strings, and snowflakes for users, channels, roles, mentionables and attachments.
    return isinstance(value, str)


def parse_catalog(data: Any, source: str = "catalog") -> Catalog:
    try:
        return Catalog.model_validate(data)
    except ValidationError as err:
        raise CatalogError(f"{source}: {'; '.join(_problems(data, err))}") from None


# Lists whose items carry a name: an error inside one names the item, not its index.
_NAMED_LISTS = {"commands": "command", "options": "option", "choices": "choice"}
# Model checks over a whole list, with that list: the repeated item can then be named.
_REPEATS = {"command names must be unique": "commands", "option names must be unique": "options"}
_SHOWN_CHARS = 32
_SHOULD = "Input should be "


def _problems(data: Any, err: ValidationError) -> list[str]:
    """One line per place: `command 'plan', option 'Objective' (name): 'Objective' must match …`."""
    found: dict[str, list[str]] = {}
    for item in err.errors():
        where, message = _problem(data, item)
        if message not in found.setdefault(where, []):
            found[where].append(message)
    return [f"{where}: {_joined(messages)}" for where, messages in found.items()]


def _joined(messages: list[str]) -> str:
    # A union's members fail one by one at the same place (value: str | int | float):
    # "[1]: Input should be a valid string or a valid integer or a valid number".
    heads = {m.partition(_SHOULD)[0] for m in messages}
    if len(messages) > 1 and len(heads) == 1 and all(_SHOULD in m for m in messages):
        return heads.pop() + _SHOULD + " or ".join(m.partition(_SHOULD)[2] for m in messages)
    return ", and ".join(messages)


def _problem(data: Any, item: Any) -> tuple[str, str]:
    names, field, node = _locate(data, tuple(item["loc"]))
    text = _text(item)
    if (listed := _REPEATS.get(text)) and (repeats := _repeated(node, listed)):
        # The repeated item is named, as any other problem with an item is.
        names = [*names, f"{_NAMED_LISTS[listed]} {_shown(repeats[0])}"]
        return ", ".join(names), f"given more than once ({text})"
    path = ".".join(field)
    if not names:
        return path or "(root)", _message(item, text)
    return ", ".join(names) + (f" ({path})" if path else ""), _message(item, text)


def _locate(data: Any, loc: tuple[int | str, ...]) -> tuple[list[str], list[str], Any]:
    """The named items along `loc` (command 'plan', option 'x'), the rest of the path (the
    field), and the input at `loc`."""
    names: list[str] = []
    node = data
    at = 0
    while at + 1 < len(loc):
        part, index = loc[at], loc[at + 1]
        items = _child(node, part)
        if part not in _NAMED_LISTS or not isinstance(index, int) or not isinstance(items, list):
            break
        node = _child(items, index)
        names.append(_item_label(_NAMED_LISTS[str(part)], node, index))
        at += 2
    field: list[str] = []
    for part in loc[at:]:
        if isinstance(part, str) and not isinstance(node, dict):
            continue  # pydantic's tag for one member of a union, not a key of the catalog
        field.append(str(part))
        node = _child(node, part)
    return names, field, node


def _child(node: Any, part: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _item_label(kind: str, item: Any, index: int) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{kind} {_shown(name)}" if isinstance(name, str) and name else f"{kind} #{index + 1}"


def _repeated(node: Any, listed: str) -> list[str]:
    items = _child(node, listed)
    names = [_child(i, "name") for i in items] if isinstance(items, list) else []
    return sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})


def _shown(value: Any) -> str:
    # One line, and short: a catalog value may be a long description.
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return f"{value[:_SHOWN_CHARS]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}…"


def _text(item: Any) -> str:
    return str(item["msg"]).removeprefix("Value error, ")


def _message(item: Any, text: str) -> str:
    kind, value = item["type"], item["input"]
    if kind == "string_pattern_mismatch":
        return f"{_shown(value)} must match {item['ctx']['pattern']}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required but not set"
    # Pydantic's own words do not quote the value; a validator's message already does.
    if kind != "value_error" and isinstance(value, str | int | float | bool):
        return f"{_shown(value)}: {text}"
    return text


def check_options(command: Command, raw: Any) -> tuple[dict[str, Any], list[str]]:
    """Check supplied options against the catalog. Returns (values, problems); pure."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        return {}, ["options are malformed"]
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append("an option is malformed")
            continue
        name = item["name"]
        shown = safe_name(name)
        option = command.option(name)
        if option is None:
            problems.append(f"unknown option `{shown}`")
            continue
        if name in values:
            problems.append(f"`{shown}` is given twice")
            continue
        value = item.get("value")
        if item.get("type") != option.type or not _matches_type(option.type, value):
            problems.append(f"`{shown}` has the wrong type")
            continue
        if option.choices and value not in [choice.value for choice in option.choices]:
            allowed = ", ".join(str(choice.value) for choice in option.choices)
            problems.append(f"`{shown}` must be one of: {allowed}")
            continue
        if (
            option.max_length is not None
            and isinstance(value, str)
            and len(value) > option.max_length
        ):
            problems.append(f"`{shown}` is longer than {option.max_length} characters")
            continue
        if isinstance(value, str) and (trouble := _text_problem(command, option, value)):
            problems.append(f"`{shown}` {trouble}")
            continue
        values[name] = value
    for option in command.options:
        if option.required and option.name not in values and not _mentioned(raw, option.name):
            problems.append(f"`{option.name}` is required")
    return values, problems


def _text_problem(command: Command, option: Option, value: str) -> str | None:
    if option.type in SNOWFLAKE_TYPES:
        return None if ids.is_snowflake(value) else "is not an ID"
    problem = parameter_text.control_problem(value)
    if problem is None and command.parameter_encoding == parameter_text.PLAIN:
        problem = parameter_text.argo_problem(value)
    return problem


def _mentioned(raw: list[Any], name: str) -> bool:
    return any(isinstance(item, dict) and item.get("name") == name for item in raw)
