"""The demo's page: a Gradio ``gr.Blocks`` over :class:`src.webdemo.jobs.DemoJobs`. Upload a photo
or a short clip, choose the task (the checkpoint's, or another one's prompts), the prompt (the
checkpoint's mode, the task's uniform prompt, or your own words, with an optional scene caption)
and a seed; Restore runs one job at a time (the queue's concurrency limit is 1) with a progress
bar over the sampling steps, then shows the trajectory strip, the restored image and the
trajectory video (a photo) or the restored clip and its side by side (a clip), with the result
files to download. A refused upload or request raises ``gr.Error`` with the one line that says
why (the same lines as the demo's former HTTP API).

Nothing is fetched from the internet: analytics off (``GRADIO_ANALYTICS_ENABLED=False`` before
Gradio is imported, ``analytics_enabled=False``), a theme on the system's fonts (the default one
names web fonts), no share link. The API (``/restore``, see the page's "Use via API") takes the
same inputs: ``gradio_client.Client(url).predict(handle_file(path), "checkpoint", "checkpoint",
"", "", 0, api_name="/restore")``."""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402 - after the environment it reads at import

from src.webdemo.jobs import MAX_SEED, TASKS, DemoJobs, failure_message  # noqa: E402

SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
IMAGE = dict(buttons=["download", "fullscreen"], show_label=True)  # no share button
VIDEO = dict(autoplay=True, loop=True, interactive=False, buttons=["download"])


def theme() -> gr.themes.Base:
    """Gradio's default look on local fonts (its default theme loads web fonts)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def intro(info: dict) -> str:
    limits = (
        f"Photos ({' '.join(info['image_suffixes'])}) up to {info['max_pixels']} pixels; clips "
        f"({' '.join(info['video_suffixes'])}) up to {info['max_video_seconds']:g} s; files up to "
        f"{info['max_upload_mb']:g} MB."
    )
    return (
        "# progrestore demo\n"
        "Restore a degraded photo (or a short clip) into a progression trajectory with a video "
        "diffusion model and its trained adapter.\n\n"
        f"Checkpoint `{info['checkpoint']}` (model {info['model']}, trained for {info['default_task']}, "
        f"{info['prompt_mode']} prompts). {limits}"
    )


def prompt_preview(info: dict, task: str, choice: str) -> str:
    task = info["default_task"] if task in (None, "", "checkpoint") else task
    if choice == "uniform" or (choice == "checkpoint" and info["prompt_mode"] == "uniform"):
        return f'Prompt: "{info["uniform_prompts"].get(task, "")}"'
    if choice == "checkpoint":
        return f'Prompt: the {task} task\'s adaptive template with your caption (or "the scene")'
    return "Prompt: your own words."


def build(jobs: DemoJobs) -> gr.Blocks:
    """The page and its callbacks."""
    info = jobs.describe()
    adaptive = info["prompt_mode"] == "adaptive"
    task_choices = [(f"the checkpoint's ({info['default_task']})", "checkpoint")] + [(t, t) for t in TASKS]
    prompt_choices = [
        (f"the checkpoint's prompt mode ({info['prompt_mode']})", "checkpoint"),
        ("the task's uniform prompt", "uniform"),
        ("your own words", "text"),
    ]

    def describe(task, choice):
        return (
            gr.update(visible=choice == "text"),
            gr.update(visible=choice == "checkpoint" and adaptive),
            prompt_preview(info, task, choice),
        )

    def restore(upload, task, prompt, text, caption, seed, progress=gr.Progress()):  # noqa: B008 - Gradio's API
        try:
            request = jobs.parse_request(task, prompt, text, caption, seed)
            job = jobs.submit(upload, os.path.basename(str(upload)) if upload else None, request)
            preview = job.image
            progress(0.0, desc=f"{job.name}: starting")
            jobs.run(job, lambda fraction, text: progress(fraction, desc=text))
        except Exception as err:  # noqa: BLE001 - every failure is the job's (a bug is logged); the page goes on
            raise gr.Error(failure_message(err), duration=None) from None
        files = [str(job.result / name) for name in job.files]
        used = (
            f"restored {job.name} in {job.seconds:g} s: task {request.task}, seed {request.seed}, "
            f'{job.prompt_mode} prompt "{job.prompt}"'
        )
        is_image = job.kind == "image"
        shown = {name: str(job.result / name) for name in job.files}
        return (
            gr.update(visible=is_image),
            gr.update(visible=not is_image),
            preview if is_image else None,
            shown.get("restored.png"),
            shown.get("trajectory.mp4"),
            shown.get("strip.png"),
            shown.get("restored.mp4"),
            shown.get("side_by_side.mp4"),
            gr.update(visible=True),
            files,
            used,
        )

    with gr.Blocks(title="progrestore demo", analytics_enabled=False) as page:
        gr.Markdown(intro(info), elem_id="intro")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                upload = gr.File(label="1. Your photo or clip", type="filepath", elem_id="upload")
                task = gr.Dropdown(task_choices, value="checkpoint", label="2. Task", elem_id="task")
                prompt = gr.Radio(prompt_choices, value="checkpoint", label="Prompt", elem_id="prompt")
                text = gr.Textbox(
                    label="Your prompt",
                    value="",
                    placeholder="e.g. The dark photo gradually brightens. Static image.",
                    visible=False,
                    elem_id="text",
                )
                caption = gr.Textbox(
                    label="Scene caption (adaptive prompt)",
                    value="",
                    placeholder="e.g. a red barn in a field",
                    visible=adaptive,
                    elem_id="caption",
                )
                preview_text = gr.Markdown(
                    prompt_preview(info, "checkpoint", "checkpoint"), elem_id="preview"
                )
                seed = gr.Number(value=0, precision=0, label=f"Seed (0 to {MAX_SEED})", elem_id="seed")
                button = gr.Button("Restore", variant="primary", elem_id="restore")
                status = gr.Textbox(label="Result", interactive=False, lines=2, elem_id="status")
            with gr.Column(scale=2):
                with gr.Column(visible=False, elem_id="image-result") as image_box:
                    with gr.Row():
                        input_image = gr.Image(
                            label="input",
                            format="png",
                            interactive=False,
                            height=300,
                            **IMAGE,
                            elem_id="input",
                        )
                        restored = gr.Image(
                            label="restored (the trajectory's last frame)",
                            type="filepath",
                            interactive=False,
                            height=300,
                            **IMAGE,
                            elem_id="restored",
                        )
                    trajectory = gr.Video(label="trajectory", height=300, **VIDEO, elem_id="trajectory")
                    strip = gr.Image(
                        label="every frame of the trajectory",
                        type="filepath",
                        interactive=False,
                        **IMAGE,
                        elem_id="strip",
                    )
                with gr.Column(visible=False, elem_id="video-result") as video_box:
                    restored_video = gr.Video(
                        label="restored clip", height=360, **VIDEO, elem_id="restored-video"
                    )
                    side_video = gr.Video(
                        label="input | restored", height=360, **VIDEO, elem_id="side-by-side"
                    )
                with gr.Column(visible=False) as downloads_box:
                    downloads = gr.File(
                        label="Download", file_count="multiple", interactive=False, elem_id="downloads"
                    )

        for control in (task, prompt):
            control.change(
                describe,
                [task, prompt],
                [text, caption, preview_text],
                show_progress="hidden",
                concurrency_limit=None,  # a page update, never behind a running restore
                api_visibility="private",
            )
        button.click(
            restore,
            [upload, task, prompt, text, caption, seed],
            [image_box, video_box, input_image, restored, trajectory, strip, restored_video, side_video]
            + [downloads_box, downloads, status],
            api_name="restore",
        )
    return page
