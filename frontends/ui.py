"""The Gradio chat UI: chat with images, watch the tools work, see the evidence behind the answer.

Layout: the chat (several images per message and across the conversation; answers stream; each tool
call is a nested, collapsible message with its arguments, result and duration) beside the evidence
view (the turn's images with OCR and detector boxes labelled by id, the boxes the answer cites
highlighted), the claims (verified or flagged), the turn's figures and a trace download. Settings pick
the model, the tools and the image-token budget.

Each browser tab has its own conversation (`gr.State`); turns go through Gradio's queue with a
concurrency limit, so users wait their turn instead of sharing a model mid-generation. Reloading a tab
with `?c=CONVERSATION_ID` reopens a conversation this server holds. Nothing comes from a CDN: the
theme uses system fonts.

Files: the trace download is one copy per conversation in this app's own temp folder, refreshed once
per turn (not per streamed update); a tab that closes drops its copy, and closing the app removes the
folder. Gradio's own copies (uploads, evidence pictures, downloads) are deleted when older than
`UIConfig.cache_max_age_s` and all of them when the app shuts down. Traces name an upload by its
file name, not by the temp path Gradio stored it under.
"""

import atexit
import dataclasses
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from frontends import ui_render as R
from frontends.ui_search import build_search_tab
from tools.errors import UserError

OFFLINE_ALIASES = ["smollm2-llava", "smollm2"]  # the product offline models (tiny-* are test fixtures)
CSS = """
.banner-offline {background:#fff4ce;border:1px solid #e0b400;border-radius:6px;padding:6px 12px}
.banner-online {background:#e8f4ea;border:1px solid #5aa469;border-radius:6px;padding:6px 12px}
"""


@dataclass
class UIConfig:
    host: str = "127.0.0.1"  # loopback unless asked: the UI runs models and tools for whoever reaches it
    port: int = 7860
    concurrency: int = 1  # turns running at once; one model generates one answer at a time
    max_sessions: int = 200  # conversations kept for `?c=` reattachment (least recently used dropped)
    model_choices: list[str] = field(default_factory=list)  # extra entries for the model dropdown
    cache_max_age_s: int = 3600  # Gradio's temp files (uploads, pictures) older than this are deleted


@dataclass
class Session:
    """One browser tab's conversation and what the UI needs to redraw it."""

    conversation: object
    model: str
    messages: list[dict] = field(default_factory=list)  # the chatbot's messages
    images: dict[str, object] = field(default_factory=dict)  # image id -> PIL image (for the evidence view)
    last: dict | None = None  # last TurnResult.to_dict()
    download: tuple[int, str] | None = None  # (turns it holds, path) of the trace copy offered
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def id(self) -> str:
        return self.conversation.id


class AssistantPool:
    """One loaded assistant per model, shared by all sessions; per-session settings are cheap copies."""

    def __init__(self, build: Callable[[str], object], default_model: str):
        self._build = build
        self.default_model = default_model
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def base(self, model: str):
        with self._lock:
            if model not in self._loaded:
                self._loaded[model] = self._build(model)
            return self._loaded[model]

    def for_settings(self, model: str, tools: list[str] | None, budget: int | None):
        """An assistant sharing the loaded engine and tool runner, with these tools and budget."""
        from assistant.session import Assistant

        base = self.base(model)
        cfg = base.config
        if tools is not None:
            cfg = dataclasses.replace(cfg, tools=list(tools), no_tools=not tools)
        if budget:
            cfg = dataclasses.replace(cfg, image_tokens_per_turn=int(budget))
        assistant = Assistant(
            base.engine, base.tools, cfg, planner_factory=getattr(base, "planner_factory", None)
        )
        assistant.observers = base.observers  # the same metrics, drift, spans and logs (frontends/ops.py)
        return assistant


class SessionStore:
    def __init__(self, capacity: int):
        self._items: OrderedDict[str, Session] = OrderedDict()
        self._cap = capacity
        self._lock = threading.Lock()

    def put(self, s: Session) -> None:
        with self._lock:
            self._items[s.id] = s
            self._items.move_to_end(s.id)
            while len(self._items) > self._cap:
                self._items.popitem(last=False)[1].conversation.close()

    def get(self, cid: str) -> Session | None:
        with self._lock:
            return self._items.get(cid)


class TraceCopies:
    """The trace downloads: one file per conversation under one temp folder of this app, copied again
    only when the conversation has a new turn (Gradio may serve it; the trace folder stays private)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="grounded-vlm-ui-"))
        atexit.register(self.close)

    def get(self, session: Session) -> str | None:
        path = session.conversation.trace_path
        if not path or not Path(path).is_file():
            return None
        turns = len(session.conversation.turns)
        if session.download and session.download[0] == turns and Path(session.download[1]).is_file():
            return session.download[1]
        out = self.root / session.id / f"conversation-{session.id}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
        session.download = (turns, str(out))
        return str(out)

    def drop(self, session) -> None:
        """A tab closed: its copy goes (it is made again if the conversation is reopened)."""
        if isinstance(session, Session):
            shutil.rmtree(self.root / session.id, ignore_errors=True)
            session.download = None

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def build_ui(pool: AssistantPool, cfg: UIConfig | None = None):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    cfg = cfg or UIConfig()
    store = SessionStore(cfg.max_sessions)
    copies = TraceCopies()
    base = pool.base(pool.default_model)
    all_tools = base.tools.registry.names() if base.tools is not None else []
    on_tools = [t for t in all_tools if base.config.tools is None or t in base.config.tools]
    if base.config.no_tools:
        on_tools = []
    models = list(dict.fromkeys([pool.default_model, *cfg.model_choices, *OFFLINE_ALIASES]))

    def banner(model: str) -> str:
        try:
            desc = pool.base(model).description
        except UserError as e:
            raise gr.Error(str(e)) from None
        return f"**Model:** {desc}" if not R.is_offline(desc) else f"⚠ **Offline stand-in model:** {desc}"

    def new_session(model, tools, budget) -> Session:
        try:
            conv = pool.for_settings(model, tools, budget).conversation()
        except UserError as e:  # e.g. a model that cannot be loaded: say so in the page, keep the app up
            raise gr.Error(str(e)) from None
        s = Session(conversation=conv, model=model)
        store.put(s)
        return s

    def side_panels(s: Session):
        if s.last is None:
            return None, "_Ask a question about an image to see the evidence._", "", None
        pic = R.evidence_picture(s.last, s.images)
        return pic, R.claims_markdown(s.last), R.figures_markdown(s.last), copies.get(s)

    def respond(message, state, model, tools, budget):
        s: Session = (
            state
            if isinstance(state, Session) and state.model == model
            else new_session(model, tools, budget)
        )
        # Settings changed mid-conversation apply from the next turn: same conversation, new config.
        s.conversation.assistant = pool.for_settings(model, tools, budget)
        text = (message or {}).get("text", "").strip()
        files = [f if isinstance(f, str) else f.get("path") for f in (message or {}).get("files", [])]
        if not text and not files:
            yield s.messages, gr.MultimodalTextbox(value=None), *side_panels(s), s, _cid(s)
            return
        from tools.images import ImageRef

        with s.lock:
            refs = []
            for path in files:
                s.messages.append({"role": "user", "content": {"path": path}})
                try:
                    ref = ImageRef.from_path(path)
                    ref.source = Path(path).name  # the uploaded file's name, not Gradio's temp path
                    s.images[ref.id] = ref.image
                    refs.append(ref)
                except Exception as e:  # shown in the chat; the turn goes on without that image
                    s.messages.append({"role": "assistant", "content": f"⚠ {e}"})
            s.messages.append({"role": "user", "content": text or "(image)"})
            yield s.messages, gr.MultimodalTextbox(value=None, interactive=False), *side_panels(s), s, _cid(s)
            try:
                yield from _run_turn(s, text or "Describe this image.", refs)
            except Exception as e:  # a bug must not leave the textbox disabled; show it and carry on
                s.messages.append(
                    {"role": "assistant", "content": f"⚠ internal error: {type(e).__name__}: {e}"}
                )
                yield (
                    s.messages,
                    gr.MultimodalTextbox(value=None, interactive=True),
                    *side_panels(s),
                    s,
                    _cid(s),
                )

    def _run_turn(s: Session, text: str, refs: list):
        turn = len(s.conversation.turns) + 1
        msgs = s.messages
        parent = None
        calls: list[tuple[object, int]] = []  # (record, index in msgs) of calls still running
        answer = {"role": "assistant", "content": ""}
        draft_at = None  # the collapsed message the unchecked draft streams into
        last_yield = 0.0
        result = None
        for ev in s.conversation.stream(text, refs):
            if ev.type == "tool_start":
                if parent is None:
                    parent = R.tools_parent(turn)
                    msgs.append(parent)
                msgs.append(R.tool_message(ev.tool, turn, len(calls) + 1, done=False))
                calls.append((ev.tool, len(msgs) - 1))
            elif ev.type == "tool_end":
                i = _match(calls, ev.tool)
                if i is None:  # a call reported only when it ended
                    if parent is None:
                        parent = R.tools_parent(turn)
                        msgs.append(parent)
                    msgs.append(R.tool_message(ev.tool, turn, len(calls) + 1, done=True))
                    calls.append((None, len(msgs) - 1))
                else:
                    at = calls[i][1]
                    msgs[at] = R.tool_message(ev.tool, turn, i + 1, done=True)
                    calls[i] = (None, at)
            elif ev.type == "budget":
                msgs.append(R.budget_message(ev.budget, turn))
            elif ev.type == "token":
                # the draft streams in a collapsed message marked unverified; the answer comes once checked
                if draft_at is None:
                    msgs.append(R.streaming_draft_message(turn))
                    draft_at = len(msgs) - 1
                msgs[draft_at]["content"] += ev.text
                if time.perf_counter() - last_yield < 0.05:
                    continue  # a redraw per token is wasted work; 20 a second reads as smooth
            elif ev.type == "error":
                msgs.append({"role": "assistant", "content": f"⚠ {ev.text or ev.error}"})
            elif ev.type == "done":
                result = ev.result
            last_yield = time.perf_counter()
            yield msgs, gr.MultimodalTextbox(value=None, interactive=False), *side_panels(s), s, _cid(s)
        if parent is not None:
            parent["metadata"] = {**parent["metadata"], "status": "done"}
            parent["content"] = (
                f"{sum(1 for m in msgs if m.get('metadata', {}).get('parent_id') == f'tools-{turn}')} call(s)"
            )
        if result is not None:
            d = result.to_dict()
            s.last = d
            if d.get("model_output", "").strip() and d["model_output"].strip() != d["answer"].strip():
                draft = R.draft_message(
                    d.get("draft") or d["model_output"], d.get("overruled_because", ""), turn
                )
                if draft_at is None:
                    msgs.append(draft)
                else:
                    msgs[draft_at] = draft
            elif draft_at is not None:
                msgs.pop(draft_at)  # the answer is the draft, verified: shown once
            answer["content"] = d["answer"] + ("  \n_(abstained)_" if d.get("abstained") else "")
            msgs.append(answer)
        yield msgs, gr.MultimodalTextbox(value=None, interactive=True), *side_panels(s), s, _cid(s)

    def reset(model, tools, budget):
        s = new_session(model, tools, budget)
        return [], *side_panels(s), s, _cid(s), banner(model)

    def reopen(state, request: gr.Request):
        cid = (request.query_params.get("c") or "") if request else ""
        s = store.get(cid) if re.fullmatch(r"[\w.-]{1,128}", cid) else None
        if s is None:
            return (
                state,
                [],
                None,
                "_Ask a question about an image to see the evidence._",
                "",
                None,
                "",
                gr.update(),
            )
        return s, s.messages, *side_panels(s), _cid(s), gr.update(value=s.model)

    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    # Gradio deletes its copies older than the age every 10 minutes, and all of them at shutdown.
    with gr.Blocks(
        title="Grounded VLM assistant", delete_cache=(min(600, cfg.cache_max_age_s), cfg.cache_max_age_s)
    ) as demo:
        demo.theme_args = (theme, CSS)  # read by launch_ui (Gradio 6 takes theme and css at launch)
        demo.trace_copies = copies  # closed by close_ui
        state = gr.State(None, delete_callback=copies.drop)
        offline = R.is_offline(base.description)
        banner_md = gr.Markdown(
            banner(pool.default_model), elem_classes=["banner-offline" if offline else "banner-online"]
        )
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=720, group_consecutive_messages=False)
                box = gr.MultimodalTextbox(
                    placeholder="Ask about an image (attach one or more)…",
                    file_types=["image"],
                    file_count="multiple",
                    sources=["upload"],
                    show_label=False,
                )
            with gr.Column(scale=2):
                evidence = gr.Image(
                    label="Evidence (cited boxes in red)", type="pil", interactive=False, height=360
                )
                claims = gr.Markdown("_Ask a question about an image to see the evidence._")
                figures = gr.Markdown("")
                with gr.Row():
                    download = gr.DownloadButton("Download trace", value=None, size="sm")
                    new = gr.Button("New conversation", size="sm")
                cid_md = gr.Markdown("", elem_id="conversation-id")
                with gr.Accordion("Settings", open=False):
                    model_dd = gr.Dropdown(
                        models, value=pool.default_model, label="Model", allow_custom_value=True
                    )
                    tools_cb = gr.CheckboxGroup(all_tools, value=on_tools, label="Tools (none = tools off)")
                    budget_sl = gr.Slider(
                        0,
                        8192,
                        value=base.config.image_tokens_per_turn or 0,
                        step=64,
                        label="Image-token budget per turn (0 = the model's default; applies to new conversations)",
                    )
        build_search_tab(box)  # frontends/ui_search.py: find indexed images; a click opens one in the chat
        outputs = [chat, box, evidence, claims, figures, download, state, cid_md]
        box.submit(respond, [box, state, model_dd, tools_cb, budget_sl], outputs, api_name="chat")
        new.click(
            reset,
            [model_dd, tools_cb, budget_sl],
            [chat, evidence, claims, figures, download, state, cid_md, banner_md],
            api_name="new_conversation",
        )
        model_dd.input(  # user changes only: reopening a conversation sets the value too
            reset,
            [model_dd, tools_cb, budget_sl],
            [chat, evidence, claims, figures, download, state, cid_md, banner_md],
            api_name=False,
        )
        demo.load(
            reopen,
            [state],
            [state, chat, evidence, claims, figures, download, cid_md, model_dd],
            api_name=False,
            queue=False,  # a page load should not wait behind other users' turns
        )
    demo.queue(default_concurrency_limit=cfg.concurrency)
    return demo


def _cid(s: Session) -> str:
    return f"conversation `{s.id}` · reopen with `?c={s.id}`"


def _match(calls: list, rec) -> int | None:
    """The running call a tool_end event finishes: same tool, image and arguments, first still open."""
    for i, (open_rec, _) in enumerate(calls):
        if (
            open_rec is not None
            and open_rec.tool == rec.tool
            and open_rec.image == rec.image
            and open_rec.args == rec.args
        ):
            return i
    return next((i for i, (o, _) in enumerate(calls) if o is not None and o.tool == rec.tool), None)


def close_ui(demo) -> None:
    """Stop the server; Gradio deletes its temp files, and the trace copies go too."""
    demo.close()
    copies = getattr(demo, "trace_copies", None)
    if copies is not None:
        copies.close()


def launch_ui(demo, cfg: UIConfig, block: bool = True):
    theme, css = getattr(demo, "theme_args", (None, None))
    if block:
        try:
            return _launch(demo, cfg, theme, css, block)
        finally:
            close_ui(demo)
    return _launch(demo, cfg, theme, css, block)


def _launch(demo, cfg: UIConfig, theme, css, block: bool):
    return demo.launch(
        server_name=cfg.host,
        server_port=cfg.port,
        theme=theme,
        css=css,
        ssr_mode=False,
        share=False,
        show_error=True,
        footer_links=[],
        prevent_thread_lock=not block,
        quiet=not block,
    )
