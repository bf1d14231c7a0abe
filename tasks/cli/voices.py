"""`audiobook voices`: the configured model's voices, its licence, and whether its audio may be sold."""

from __future__ import annotations

import argparse
import json

from tasks.cli import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "voices", help="voices of the configured model, and whether its audio may be sold",
        description="Load AUDIOBOOK_MODEL as a worker does (AUDIOBOOK_DEVICE) and list its voices, with the "
                    "licence of the model and its training data. --models lists every supported model instead.")
    parser.add_argument("--models", action="store_true", help="list the supported models and their licences only")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.engines.catalog import SUPPORTED_MODELS, supported_model

    if args.models:
        if args.json:
            print(json.dumps([m.to_json() for m in SUPPORTED_MODELS], indent=2))
        else:
            for m in SUPPORTED_MODELS:
                print(f"{m.model}\n  {m.engine}; {m.voices}; {m.sample_rate} Hz\n  licence: {m.licence}\n"
                      f"  audio may be sold: {'yes' if m.sellable else 'no'}{'; ' + m.note if m.note else ''}")
        return 0

    from settings import SettingsError, get_settings
    from synth.errors import ModelLoadError

    try:
        s = get_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    try:
        from synth.engines import load_engine

        engine = load_engine(s.model, s.device, s.unknown_chars)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from None
    entry = supported_model(s.model)
    voices = engine.voices()
    if args.json:
        print(json.dumps({"model": engine.name, "sample_rate": engine.sample_rate, "voices": voices,
                          "default_voice": voices[0], "licence": entry.licence if entry else None,
                          "sellable": entry.sellable if entry else None}, indent=2))
        return 0
    print(f"model: {engine.name} ({engine.sample_rate} Hz)")
    if entry is None:
        print("licence: not in the supported models (audiobook voices --models); check the model's card and its "
              "training data before selling its audio")
    else:
        print(f"licence: {entry.licence}\naudio may be sold: {'yes' if entry.sellable else 'no'}"
              + (f" ({entry.note})" if entry.note else ""))
    print(f"voices ({len(voices)}, the first is the default):")
    for voice in voices:
        print(f"  {voice}")
    return 0
