"""Brazilian Portuguese: every string of our templates is translated, and no page rendered in pt-BR still shows one
of them in English."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from automations.engine import AutoEntryConfig, MarginGuardConfig, TpSlConfig
from automations.models import AuditEntry, Automation, TrackedTrade
from automations.services import management
from automations.services.trades import trade_closed_said
from automations.specs import MarketSnapshot
from backtest.models import BacktestRun
from notifications.models import Channel
from tests.backtest.test_views import form_data, run_all

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "pt_BR" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
PT = {"HTTP_ACCEPT_LANGUAGE": "pt-BR,pt;q=0.9"}
# English msgids that are also Portuguese words ("Age" = acts).
PORTUGUESE_TOO = {"Age"}


def _entries() -> list[dict[str, object]]:
    """(msgid, msgstr or plural forms, references, context) of every entry of the pt_BR catalogue."""
    entries: list[dict[str, object]] = []
    current: dict[str, object] = {}
    key = ""
    for raw in PO.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#:"):
            if "msgid" in current:
                entries.append(current)
                current = {}
            current.setdefault("refs", []).extend(line[2:].split())  # type: ignore[attr-defined]
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) (".*")$', line)
        if match:
            key = match.group(1)
            if key in ("msgctxt", "msgid") and "msgid" in current and "msgstr" in str(list(current)):
                entries.append(current)
                current = {}
            current[key] = _unquote(match.group(2))
        elif line.startswith('"') and key:
            current[key] = str(current[key]) + _unquote(line)
    if "msgid" in current:
        entries.append(current)
    return [e for e in entries if e.get("msgid")]


def _unquote(text: str) -> str:
    return bytes(text[1:-1], "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


@pytest.fixture(scope="module", autouse=True)
def compiled_messages():
    """`make` compiles the catalogue; a direct pytest run compiles it here when the .mo is missing or older."""
    if not MO.exists() or MO.stat().st_mtime < PO.stat().st_mtime:
        done = subprocess.run(
            [sys.executable, "manage.py", "compilemessages", "--ignore=.venv", "-v", "0"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"compilemessages failed (is gettext installed?):\n{done.stderr}"
        translation.trans_real._translations = {}  # type: ignore[attr-defined]
        translation.trans_real._active = translation.trans_real.Local()  # type: ignore[attr-defined]


def test_every_entry_is_translated():
    missing = [e["msgid"] for e in _entries() if not (e.get("msgstr") or (e.get("msgstr[0]") and e.get("msgstr[1]")))]
    assert missing == []


def _template_strings() -> list[str]:
    """English strings of our own templates whose Portuguese differs (so seeing them means a missing translation)."""
    strings = []
    for e in _entries():
        refs = [str(r) for r in e.get("refs", [])]  # type: ignore[attr-defined]
        if not any(r.startswith("templates/") for r in refs) or "msgid_plural" in e:
            continue
        msgid, msgstr = str(e["msgid"]), str(e.get("msgstr", ""))
        if "%(" in msgid or msgid == msgstr or len(msgid) < 3 or msgid in PORTUGUESE_TOO:
            continue
        strings.append(msgid.replace("%%", "%"))
    return strings


def _visible_text(body: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.sub(r"\s+", " ", html.unescape(body))


def _around(text: str, msgid: str) -> str:
    """Where ``msgid`` shows in ``text`` (for the failure message)."""
    match = re.search(rf"(?<![\w=,-]){re.escape(msgid)}(?![\w=,-])", text)
    start = match.start() if match else 0
    return text[max(0, start - 80) : start + 80]


def _market() -> MarketSnapshot:
    return MarketSnapshot(
        last_price=D(95000), index=D(95000), bid=D(95000), ask=D(95000), time=timezone.now() - timedelta(seconds=1)
    )


@pytest.fixture
def pages(client, alice, make_account, monkeypatch):
    """alice with a paper account, a running trade, one automation of each kind and an audit entry."""
    monkeypatch.setattr(management, "preview_market", lambda network: _market())
    account = make_account(alice, label="Papel")
    running = TrackedTrade.objects.create(
        account=account,
        trade_id="t-1",
        client_id="ax-1",
        origin=TrackedTrade.Origin.AXISOR,
        managed=True,
        state=TrackedTrade.State.RUNNING,
        side="buy",
        quantity=100,
        entry_price=D(100000),
        margin=10000,
        leverage=D(10),
        liquidation=D("90909.0"),
        maintenance_margin=110,
        opening_fee=100,
        last_seen_at=timezone.now(),
    )
    guard = management.automation_create(
        account=account,
        name="Guarda",
        kind="margin_guard",
        config=MarginGuardConfig(trigger="liquidation_distance", threshold=D(3), action="close", cooldown_seconds=60),
    )
    tpsl = management.automation_create(
        account=account,
        name="Alvo",
        kind="tpsl",
        config=TpSlConfig(direction="profit", trigger_percent=D(20), action="breakeven"),
    )
    entry = management.automation_create(
        account=account,
        name="Compra",
        kind="auto_entry",
        config=AutoEntryConfig(
            side="buy", leverage=D(10), quantity=100, margin=None, trigger="price_below", trigger_price=D(90000)
        ),
    )
    # The services' own audit entries ("Automation … created") are shown in the reader's language; so are the
    # engine's decisions and skips (from their typed fields) and a trade closed by its stop-loss.
    AuditEntry.objects.create(
        account=account,
        automation=guard,
        kind="margin_guard",
        event="decision",
        outcome="pending",
        message="close: Distance to liquidation 2.9 % ≤ 3 %: closing the trade.",
        inputs={"trigger": "liquidation_distance", "distance": "2.9000", "threshold": "3"},
        decision={"kind": "close", "trade_id": "t-1", "protective": True, "reason": "closing the trade."},
    )
    AuditEntry.objects.create(
        account=account,
        automation=entry,
        kind="auto_entry",
        event="skip",
        outcome="skipped",
        message="skip: Last price 89000 ≤ 90000, but the price is 20.0 s old (limit 15 s).",
        inputs={"trigger": "price_below", "last_price": "89000", "trigger_price": "90000"},
        decision={"kind": "skip", "code": "stale_price", "trade_id": None, "reason": "old"},
    )
    message, inputs = trade_closed_said("t-9", "stoploss", "93000.5", -1200)
    AuditEntry.objects.create(account=account, event="reconcile", outcome="info", message=message, inputs=inputs)
    management.automation_pause(automation=tpsl)
    management.account_kill_switch_set(account=account, on=True)
    channel = Channel.objects.create(owner=alice, kind="email", name="Correio", address="alice@example.com")
    client.force_login(alice)
    with mock.patch("backtest.services.backtest_enqueue"):
        client.post(reverse("backtest:new"), form_data(guard))
    run = run_all(BacktestRun.objects.get(owner=alice).pk)
    urls = [
        "/",
        reverse("realtime:positions"),
        *(
            reverse("realtime:trade-action", args=[running.pk, a])
            for a in ("close", "stoploss", "takeprofit", "add-margin")
        ),
        reverse("realtime:close-all", args=[account.pk]),
        reverse("accounts:list"),
        reverse("accounts:create"),
        reverse("accounts:paper-create"),
        reverse("accounts:paper-reset", args=[account.pk]),
        reverse("accounts:edit", args=[account.pk]),
        reverse("accounts:delete", args=[account.pk]),
        reverse("accounts:settings"),
        reverse("accounts:two-factor"),
        reverse("automations:list"),
        reverse("automations:choose-kind"),
        reverse("automations:log"),
        reverse("automations:account", args=[account.pk]),
        reverse("help"),
        reverse("backtest:list"),
        reverse("backtest:new"),
        reverse("backtest:detail", args=[run.pk]),
        reverse("notifications:list"),
        reverse("notifications:create"),
        reverse("notifications:log", args=[channel.pk]),
        reverse("history:list"),
        reverse("history:performance"),
        "/no-such-page/",
    ]
    for kind in ("margin_guard", "tpsl", "auto_entry"):
        urls.append(reverse("automations:create", args=[kind]))
    for automation in (guard, tpsl, entry):
        urls += [
            reverse("automations:edit", args=[automation.pk]),
            reverse("automations:preview", args=[automation.pk]),
            reverse("automations:delete", args=[automation.pk]),
        ]
    return client, urls, account


def test_no_page_in_pt_br_shows_an_english_string_of_our_templates(pages):
    client, urls, account = pages
    strings = _template_strings()
    assert len(strings) > 250
    rendered = {}
    for url in urls:
        response = client.get(url, **PT)
        assert response.status_code in (200, 404), url
        rendered[url] = _visible_text(response.content.decode())
    # A submit with every error at once, in Portuguese.
    bad = client.post(
        reverse("automations:create", args=["margin_guard"]),
        {"name": "", "account": account.pk, "trigger": "liquidation_distance", "threshold": "150", "action": "reduce"},
        **PT,
    )
    rendered["bad margin guard"] = _visible_text(bad.content.decode())
    assert "Deve estar acima de 0 e abaixo de 100." in rendered["bad margin guard"]
    assert "Obrigatório com esta escolha." in rendered["bad margin guard"]
    # What the audit log says is Portuguese too: no English sentence of the services or the engine is left.
    log = rendered[reverse("automations:log")]
    for portuguese in (
        "Automação “Guarda” criada (Margin Guard), ativa.",
        "Automação “Alvo” pausada.",
        "Chave de emergência LIGADA para “Papel”",
        "A operação t-9 atingiu seu stop-loss (saída 93000.5, PnL -1200 sats).",
        "Distância até a liquidação 2,9 % ≤ 3 %: fechando a operação t-1.",
        "Último preço 89.000 ≤ 90.000. Não feito: o preço está antigo demais.",
    ):
        assert portuguese in log
    for english in ("created (", "Kill switch turned ON", "hit its stop-loss", "closing the trade", "price is 20.0 s"):
        assert english not in log
    (backtest,) = (text for url, text in rendered.items() if url.startswith("/backtests/") and url[-2:-1].isdigit())
    assert "Cenário de estresse" in backtest
    assert "Stress scenario" not in backtest
    found = []
    for url, text in rendered.items():
        for msgid in strings:
            if re.search(rf"(?<![\w=,-]){re.escape(msgid)}(?![\w=,-])", text):
                found.append((url, msgid))
    assert found == [], "\n".join(f"{u}: {m!r} in “…{_around(rendered[u], m)}…”" for u, m in found)


def test_numbers_and_dates_follow_the_locale(pages):
    client, _urls, _account = pages
    body = client.get(reverse("automations:list"), **PT).content.decode()
    assert "3 %" in body
    guard = Automation.objects.get(name="Guarda")  # not pk 1: PostgreSQL does not reset sequences between tests
    preview = _visible_text(client.get(reverse("automations:preview", args=[guard.pk]), **PT).content.decode())
    assert "93.720,5 USD" in preview  # grouping dot, decimal comma


def test_a_preview_decision_says_why_in_portuguese(pages):
    client, _urls, account = pages
    guard = management.automation_create(
        account=account,
        name="Perto",
        kind="margin_guard",
        config=MarginGuardConfig(trigger="liquidation_distance", threshold=D(5), action="close", cooldown_seconds=60),
    )
    preview = _visible_text(client.get(reverse("automations:preview", args=[guard.pk]), **PT).content.decode())
    assert "Distância até a liquidação 4,31 % ≤ 5 %: fechando a operação t-1." in preview
    assert "closing the trade" not in preview


def test_the_browser_language_chooses_and_the_settings_override(client, alice):
    client.force_login(alice)
    assert "Configurações" in client.get(reverse("accounts:settings"), **PT).content.decode()
    alice.language = "en"
    alice.save(update_fields=["language"])
    assert "Configurações" not in client.get(reverse("accounts:settings"), **PT).content.decode()
