"""A page to draw a digit on, and the JSON API behind it: FastAPI, served by uvicorn.

Nothing is written to disk: an upload is read into memory under a size limit (raw image bytes, so that no
multipart parser spools it to a temporary file), prepared like predict.py's images and answered as JSON.
"""

import errno
import socket
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from omegaconf import DictConfig
from starlette.concurrency import run_in_threadpool

from mnistlab.core.errors import MnistlabError
from mnistlab.data.user_images import ImageProblem, check_invert, open_image, prepare_image
from mnistlab.run.trained import CheckpointModel, OnnxModel, load_trained_model

PAGE = Path(__file__).with_name("serve_page.html")


def create_app(trained: CheckpointModel | OnnxModel, invert: bool | str, max_upload_bytes: int) -> FastAPI:
    card = trained.card
    field_size = (card.input_shape[1], card.input_shape[2])
    page = PAGE.read_text()
    app = FastAPI(title="mnistlab", docs_url=None, redoc_url=None)  # the docs pages need a CDN

    @app.get("/", response_class=HTMLResponse)
    def draw_a_digit() -> str:
        return page

    @app.get("/model")
    def model_card() -> dict[str, Any]:
        return {"class_names": card.class_names, "input_shape": card.input_shape}

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("image/"):
            raise HTTPException(
                415,
                f"Content-Type {content_type or '(none)'} is not an image: send the image's bytes as the "
                "request body with Content-Type image/png (or image/jpeg, ...)",
            )
        body = await read_body(request, max_upload_bytes)
        if not body:
            raise HTTPException(400, "the request body is empty: send the bytes of an image")
        return await run_in_threadpool(answer, body)

    def answer(body: bytes) -> dict[str, Any]:
        try:
            image = prepare_image(open_image(body), field_size, invert)
        except ImageProblem as problem:
            status = 422 if str(problem).startswith("blank") else 400
            raise HTTPException(status, f"cannot use the upload: {problem}") from None
        probabilities = trained.probabilities(image[None])[0].tolist()
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return {
            "class": card.class_names[best],
            "index": best,
            "probability": probabilities[best],
            "class_names": card.class_names,
            "probabilities": probabilities,
        }

    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (whatever Content-Length says)."""
    too_large = HTTPException(413, f"the upload is over {limit:,} bytes: send a smaller image")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is one line, and port=0 picks a free one."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen()  # from now on connections wait for uvicorn, which starts listening a little later
    except OSError as error:
        sock.close()
        fix = "choose another with port=..." if error.errno == errno.EADDRINUSE else "check host=..."
        raise MnistlabError(f"cannot listen on {host}:{port} ({error.strerror}): {fix}") from None
    return sock


def serve(cfg: DictConfig) -> None:
    check_invert(cfg.invert)
    trained = load_trained_model(Path(cfg.ckpt_path))
    shape = trained.card.input_shape
    if len(shape) != 3 or shape[0] != 1:
        raise MnistlabError(
            f"{cfg.ckpt_path}: its model takes inputs of shape {shape}, not grey images, so there is "
            "nothing to draw; use predict.py (points: a .csv) with it"
        )
    app = create_app(trained, cfg.invert, cfg.max_upload_bytes)
    sock = bind(cfg.host, cfg.port)
    host, port = sock.getsockname()[:2]
    print(f"serving {cfg.ckpt_path} at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=cfg.log_level))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly on Ctrl-C, then passes the signal on
        print("stopped")
    finally:
        sock.close()
