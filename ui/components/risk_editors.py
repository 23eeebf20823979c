"""The risk profile and compliance rules editors of the Risk page: an account's limits
(editable by admins; an account without a profile starts from QSuite's defaults) and the
rules with their kinds (enable, disable, add or change one, for admins)."""

from __future__ import annotations

import json
from collections.abc import Awaitable

from nicegui import background_tasks, ui

from engine.bus.commands.risk import ComplianceRules, RiskProfileView, RuleRow
from ui.components.risk_actions import (
    enable_rule,
    load_profile,
    load_rules,
    save_profile,
    save_rule,
    shown_limits,
)
from ui.components.sources import RiskSource
from ui.components.widgets import say


def profile_editor(bridge: RiskSource, admin: bool) -> None:
    current: list[RiskProfileView] = []
    inputs: dict[str, ui.input] = {}
    with ui.card().classes("grow").props('data-testid="profile-editor"'):
        ui.label("Risk profile").classes("text-subtitle2")
        with ui.row().classes("items-center gap-2"):
            account = ui.input("Account").classes("w-40").mark("profile-account")
            load = ui.button("Load").props("flat").mark("profile-load")
            version = ui.label("").classes("text-caption").mark("profile-version")
        fields = ui.grid(columns=3).classes("w-full gap-2").mark("profile-fields")
        message = ui.label("").classes("text-caption").mark("profile-message")
        if admin:
            save = ui.button("Save changes").mark("profile-save")

    def show(profile: RiskProfileView) -> None:
        current[:] = [profile]
        inputs.clear()
        fields.clear()
        novel = " (none yet: saving creates it from QSuite's defaults)"
        version.set_text(f"version {profile.version}" + ("" if profile.version else novel))
        with fields:
            for name, text in shown_limits(profile).items():
                field = ui.input(name, value=text, placeholder="no limit").mark(f"profile-{name}")
                if not admin:
                    field.props("readonly")
                inputs[name] = field

    async def on_load() -> None:
        profile, why = await load_profile(bridge, account.value or "")
        if profile is not None:
            show(profile)
        say(message, profile is not None, why)

    async def on_save() -> None:
        if not current:
            say(message, False, "Load an account's profile first")
            return
        edited = {name: field.value or "" for name, field in inputs.items()}
        profile, text = await save_profile(bridge, current[0], edited)
        if profile is not None:
            show(profile)
        say(message, profile is not None, text)

    load.on_click(on_load)
    if admin:
        save.on_click(on_save)


def rules_editor(bridge: RiskSource, admin: bool) -> None:
    kinds: dict[str, str] = {}
    with ui.card().classes("grow").props('data-testid="rules-editor"'):
        with ui.row().classes("items-center gap-2"):
            ui.label("Compliance rules").classes("text-subtitle2")
            reload = ui.button(icon="refresh").props("flat dense").mark("rules-reload")
        rules = ui.column().classes("w-full gap-1").mark("rules")
        if admin:
            with ui.column().classes("w-full gap-1").mark("rule-editor"):
                name = ui.input("Rule name").classes("w-full").mark("rule-name")
                kind = ui.select([], label="Kind").classes("w-full").mark("rule-kind")
                about = ui.label("").classes("text-caption")
                kind.on_value_change(lambda e: about.set_text(kinds.get(e.value or "", "")))
                params = ui.textarea("Parameters (JSON object)", value="{}").classes("w-full")
                params.props("input-class=font-mono").mark("rule-params")
                enabled = ui.checkbox("Enabled", value=True).mark("rule-enabled")
                save = ui.button("Save rule").mark("rule-save")
        message = ui.label("").classes("text-caption").mark("rules-message")

    def show(result: ComplianceRules) -> None:
        kinds.clear()
        kinds.update({k.kind: f"{k.stage}: {k.description}" for k in result.kinds})
        if admin:
            kind.set_options(sorted(kinds))
        rules.clear()
        with rules:
            if not result.rules:
                ui.label("No compliance rules").classes("text-caption")
            for r in result.rules:
                with ui.row().classes("items-center gap-2 w-full no-wrap").mark(f"rule-{r.name}"):
                    ui.label(f"{r.name} ({r.kind} v{r.version})").classes("text-weight-bold")
                    ui.badge("enabled" if r.enabled else "disabled").props(
                        f"color={'positive' if r.enabled else 'grey'}"
                    )
                    ui.label(r.params).classes("font-mono text-caption grow")
                    if admin:
                        ui.button(
                            "Disable" if r.enabled else "Enable",
                            on_click=lambda r=r: toggle(r),
                        ).props("dense flat").mark(f"rule-toggle-{r.name}")
                        ui.button("Edit", on_click=lambda r=r: edit(r)).props("dense flat").mark(
                            f"rule-edit-{r.name}"
                        )

    async def toggle(r: RuleRow) -> None:
        await answered(enable_rule(bridge, r.name, not r.enabled))

    def edit(r: RuleRow) -> None:
        if r.kind not in kinds:  # a plugin's kind this console was not told about
            kinds[r.kind] = ""
            kind.set_options(sorted(kinds))
        name.set_value(r.name)
        kind.set_value(r.kind)
        params.set_value(json.dumps(json.loads(r.params), indent=2))
        enabled.set_value(r.enabled)

    async def answered(sending: Awaitable[tuple[ComplianceRules | None, str]]) -> None:
        result, why = await sending
        if result is not None:
            show(result)
        say(message, result is not None, why or "Saved")

    async def on_reload() -> None:
        result, why = await load_rules(bridge)
        if result is not None:
            show(result)
        say(message, result is not None, why)

    reload.on_click(on_reload)
    if admin:
        save.on_click(
            lambda: answered(
                save_rule(
                    bridge, name.value or "", kind.value or "", params.value, bool(enabled.value)
                )
            )
        )
    background_tasks.create(on_reload(), name="risk-rules")
