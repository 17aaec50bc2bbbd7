"""Extra non-photo training images for the naturalness classifier: video-game frames and photo collages.

    pip install vizdoom ale-py crafter        # the game engines, beside lait (not its dependencies)
    python bench/naturalness_extra_images.py /tmp/natural_extra
    python bench/naturalness_extra_images.py /tmp/natural_extra --only collage   # no game engine needed
    python bench/naturalness_extra_images.py /tmp/natural_extra --only render    # Debian: apt-get download

Web pages show two kinds of non-photos that ../shared/data/natural has none of: video-game
frames (3-D renders and upscaled pixel art) and collages of several photos with gutters and
captions. A classifier that never saw them scores many of them as photos (see
`quality_naturalness_web.py --cv`, per kind). This script makes examples of both from sources
unrelated to any evaluation set:

- `pip:vizdoom`: frames of Freedoom (the free Doom engine data bundled with ViZDoom) played
  by random actions, at several resolutions, with and without the status bar;
- `pip:ale-py`: frames of the Atari 2600 games bundled with the Arcade Learning Environment,
  upscaled as emulator screenshots are (nearest or smooth, to 4:3 or to whole multiples);
- `pip:crafter`: frames of Crafter, a 2-D pixel-art survival game;
- `collage:SOURCE`: two to six photos of one source of natural/ tiled with gutters, some with
  caption bands or a heading. The group names the photos' source, so that cross-validation
  holding that source out leaves its collages out of training too;
- `deb:PACKAGE` (`--only render`, asked for by name: it fetches about 1.8 GB): real 3-D game
  renders, the map screenshots that free games ship in their Debian data packages (`GAME_RENDERS`:
  Nexuiz's 33 level shots, Red Eclipse's 66 map shots, SuperTuxKart's 15 track screenshots),
  read from the .deb files (`apt-get download` into `--debs`, unpacked by `dpkg-deb`), as they are.

Measured (`quality_naturalness_web.py --cv --extras`, seed 0, 80 of each kind), against the
shipped recipe trained without them:

| | natural/ leave one source out, AUC / accuracy | webcrawl leave one site out, AUC / accuracy | webcrawl photo recall / other rejected |
| --- | --- | --- | --- |
| without (ships) | 0.9986 / 0.9825 | 0.9179 / 0.8997 | 0.967 / 0.750 |
| games + collages | 0.9967 / 0.9626 | 0.9693 / 0.9029 | 0.920 / 0.865 |
| collages alone | 0.9977 / 0.9753 | 0.9513 / 0.8900 | 0.920 / 0.823 |

They help on the web kinds (mean scores with games + collages: collages 0.60 -> 0.15, comics
0.31 -> 0.09, games 0.52 -> 0.33) and cost photos of natural/: mostly Urban100's building
facades (photo recall 0.95 -> 0.60 with games + collages, 0.85 with collages alone). Portal's and
Mass Effect's 3-D renders still score 0.76 to 0.94. Other seeds, counts and caption fonts move
each figure by a point or two.

The real renders (`--only render`, recipe `after_with_game_renders`, all 114) carry across games,
where the generated frames do not: each game held out, a model trained on the other two scores
20% to 21% of its renders as photos (the shipped model: 94% to 100%), against 36% for the Doom
frames when only the generated ones train. Portal's renders drop from 0.999 to under 0.5 (the
game kind's mean score 0.515 -> 0.232). They cost the same photos as the other extras:

| | natural/ leave one source out, AUC / accuracy | webcrawl leave one site out, AUC / accuracy | webcrawl photo recall / other rejected |
| --- | --- | --- | --- |
| game renders | 0.9953 / 0.9578 | 0.9613 / 0.9061 | 0.930 / 0.854 |

natural/'s photo recall falls 0.984 -> 0.933 (31 photos; its other kinds are rejected as before,
0.9815): 21 of the photos lost are Urban100's and Sun Hays' buildings, streets and a stadium,
whose straight edges and flat walls look like a game level when their source is held out, 8 are
ImageNet objects. Flickr8k's photos, never trained on: 0.998 -> 0.988. Mass Effect's renders
still score 0.997. Three more Debian games (FlightGear's aircraft previews and splash screens,
TORCS's splash screens, 40 Neverball level shots) on top: webcrawl 0.957, natural/ photo
recall 0.913. The logistic regression's C (0.03 to 1) and the renders' sample weight (0.25 to 1)
move no figure by more than 0.003 AUC, and statistics weight 1 instead of 4 loses (natural/
0.9915, webcrawl 0.9532); 300 or 1,500 Flickr8k train
photos beside the renders win natural/ photos back (photo recall 0.946, 0.956) and lose the web
figure (0.958, 0.956). With the collages too: webcrawl 0.976, natural/ photo recall 0.87. A
one-hidden-layer network (32 units) in place of the logistic regression, renders in: natural/
0.9957 (photo recall 0.928), webcrawl 0.958: the buildings are not a matter of a linear boundary.
Nor of the view: with the renders, as more columns, EfficientNet's detail (the pooled outputs of
the blocks ending its 192- and 320-channel stages, which FilterImages computes for relevance
anyway) gives natural/ 0.9956 (photo recall 0.936), webcrawl 0.9619; the embedding of a 224 px
centre crop at the image's own scale (textures at full resolution) 0.9949 (0.931), 0.9573; a
second backbone, the mean and spread of NudeNet's YOLOv8n feature maps at strides 8, 16 and 32
(the detector FilterImages runs anyway), 0.9968 (0.939), 0.9417: it rejects the held-out Debian
games better (10% scored photo) and Portal worse, and keeps 0.962 of Flickr8k's 1,000 dev photos.

So the shipped model does not train on them. A user whose crawl is mostly games or comics may:

    python bench/quality_naturalness_web.py --training_folder /tmp/natural_web --extras /tmp/natural_extra
    lait train-naturalness /tmp/natural_web --statistics_weight 4 --output my_naturalness.json

(The 5-fold report of `train-naturalness` then counts `collage:SOURCE` as a source of its own;
`quality_naturalness_web.py --cv --extras` is the figure to trust.)

Every image is saved as JPEG (as web pages serve them), with `labels.csv` in the same format as
natural/ (`path,label,kind,source_repo`), label `other`, and `made.json` (the arguments). The
output is the same for the same seed and package versions (lait's pinned Pillow; captions use
its bundled font, not the machine's).
Nothing here is copied into the repository: the folder is training input, like natural/.
"""

from __future__ import annotations

import argparse
import csv
import functools
import importlib.util
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lait import progress  # noqa: E402
from lait.pipeline.commands.train_naturalness import LABEL_COLUMNS  # noqa: E402

NATURAL = Path(os.environ.get("LAIT_SHARED", ROOT.parent / "shared")) / "data" / "natural"
DEBS = ROOT / "out" / "debian"
# Real 3-D game renders: the map screenshots free games ship in their Debian data packages.
# Package -> (member, or the archive holding them, inside the package; members inside that archive).
GAME_RENDERS = {
    "nexuiz-data": ("usr/share/games/nexuiz/data/data.pk3", "maps/*.jpg"),
    "redeclipse-data": ("usr/share/games/redeclipse/data/maps/*.png", None),
    "supertuxkart-data": ("usr/share/games/supertuxkart/data/tracks/*/screenshot.*", None),
}


def save_jpeg(image: Image.Image, path: Path, rng: random.Random) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, "JPEG", quality=rng.randint(70, 92))


def upscale_like_a_screenshot(frame: np.ndarray, rng: random.Random) -> Image.Image:
    """A small game frame enlarged as people post them: whole multiples or 4:3, sharp or smooth."""
    image = Image.fromarray(frame)
    if rng.random() < 0.5:
        factor = rng.choice((2, 3, 4))
        size = (image.width * factor, image.height * factor)
    else:
        width = rng.choice((480, 640, 800))
        size = (width, width * 3 // 4)
    return image.resize(size, rng.choice((Image.Resampling.NEAREST, Image.Resampling.BILINEAR)))


def doom_game(package: Path, scratch: str, rng: random.Random):
    """A started ViZDoom game: a random Freedoom map or bundled scenario, resolution and display."""
    import vizdoom

    game = vizdoom.DoomGame()
    game.set_doom_config_path(os.path.join(scratch, "_vizdoom.ini"))  # ViZDoom writes it; not into the cwd
    game.set_seed(rng.randint(0, 2**31 - 1))
    game.set_doom_game_path(str(package / rng.choice(("freedoom1.wad", "freedoom2.wad"))))
    if rng.random() < 0.3:
        scenario = rng.choice(("deathmatch.wad", "deadly_corridor.wad", "defend_the_center.wad",
                               "health_gathering.wad", "my_way_home.wad"))
        game.set_doom_scenario_path(str(Path(vizdoom.scenarios_path) / scenario))
    elif "freedoom1" in game.get_doom_game_path():
        game.set_doom_map(rng.choice([f"E{e}M{m}" for e in (1, 2, 3) for m in range(1, 9)]))
    else:
        game.set_doom_map(rng.choice([f"MAP{m:02d}" for m in range(1, 21)]))
    game.set_screen_resolution(rng.choice((vizdoom.ScreenResolution.RES_640X480, vizdoom.ScreenResolution.RES_800X600,
                                           vizdoom.ScreenResolution.RES_1024X768)))
    game.set_screen_format(vizdoom.ScreenFormat.RGB24)
    game.set_window_visible(False)
    game.set_render_hud(rng.random() < 0.7)
    game.set_render_weapon(rng.random() < 0.8)
    game.set_available_buttons([vizdoom.Button.MOVE_FORWARD, vizdoom.Button.TURN_LEFT,
                                vizdoom.Button.TURN_RIGHT, vizdoom.Button.ATTACK])
    game.set_episode_timeout(100000)
    game.init()
    return game


def doom_frames(count: int, rng: random.Random):
    """Three frames a game, each after 20 to 120 random moves, until `count`."""
    import vizdoom

    package = Path(vizdoom.__file__).parent
    scratch = tempfile.mkdtemp(prefix="lait-vizdoom-")
    made = 0
    while made < count:
        game = doom_game(package, scratch, rng)
        for _ in range(min(3, count - made)):
            for _ in range(rng.randint(20, 120)):
                if game.is_episode_finished():
                    break
                game.make_action([rng.random() < 0.7, rng.random() < 0.2, rng.random() < 0.3,
                                  rng.random() < 0.1], 4)
            state = game.get_state()
            if state is None:
                break
            yield Image.fromarray(state.screen_buffer)
            made += 1
        game.close()
    shutil.rmtree(scratch, ignore_errors=True)


def atari_frames(count: int, rng: random.Random):
    import ale_py
    from ale_py import roms

    # ALE exits the process on a bundled ROM it does not support (a few two-player games): skip those.
    games = sorted(game for game in roms.get_all_rom_ids() if ale_py.ALEInterface.isSupportedROM(roms.get_rom_path(game)))
    for _ in range(count):
        ale = ale_py.ALEInterface()
        ale.setInt("random_seed", rng.randint(0, 2**31 - 1))
        ale.setLoggerMode(ale_py.LoggerMode.Error)
        ale.loadROM(roms.get_rom_path(rng.choice(games)))
        actions = ale.getMinimalActionSet()
        for _ in range(rng.randint(60, 600)):
            ale.act(rng.choice(actions))
            if ale.game_over():
                ale.reset_game()
        yield upscale_like_a_screenshot(ale.getScreenRGB(), rng)


def crafter_frames(count: int, rng: random.Random):
    import crafter

    made = 0
    while made < count:
        side = rng.choice((400, 512, 600, 720))
        env = crafter.Env(size=(side, side), seed=rng.randint(0, 2**31 - 1))
        env.reset()
        for _ in range(3):
            for _ in range(rng.randint(20, 200)):
                _, _, done, _ = env.step(rng.randrange(env.action_space.n))
                if done:
                    env.reset()
            yield Image.fromarray(env.render())
            made += 1
            if made >= count:
                break


def debian_package(name: str, folder: Path) -> Path:
    """The package's .deb in `folder`, fetched there by `apt-get download` when absent."""
    found = sorted(folder.glob(f"{name}_*.deb"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(["apt-get", "download", name], cwd=folder, stdout=subprocess.DEVNULL)
        found = sorted(folder.glob(f"{name}_*.deb"))
        if fetched.returncode or not found:
            raise SystemExit(f"error: apt-get could not download {name} (see above); put its .deb in {folder}")
    return found[-1]


def package_members(deb: Path, pattern: str):
    """(path, file) of the files in a .deb whose path matches `pattern`, streamed from `dpkg-deb`;
    each file can be read until the next one is asked for."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as unpack:
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if member.isfile() and fnmatch(path, pattern):
                    yield path, tar.extractfile(member)
        unpack.stdout.read()  # let dpkg-deb finish writing before its exit status is read
    if unpack.returncode:
        raise SystemExit(f"dpkg-deb could not unpack {deb}")


def renders_of(deb: Path, member: str, inner: str | None):
    """(path, image) of a package's screenshots; `inner` names them inside a zip member (a Quake .pk3)."""
    for path, file in package_members(deb, member):
        if inner is None:
            yield path, Image.open(io.BytesIO(file.read()))
            continue
        with tempfile.TemporaryFile() as copy:  # a zip needs seeking; the stream cannot
            shutil.copyfileobj(file, copy)
            with zipfile.ZipFile(copy) as archive:
                for name in sorted(n for n in archive.namelist() if fnmatch(n, inner)):
                    yield f"{path}/{name}", Image.open(io.BytesIO(archive.read(name)))


def game_renders(count: int, rng: random.Random, folder: Path = DEBS):
    """(source, image) pairs: up to `count` map screenshots of each game of GAME_RENDERS."""
    for package, (member, inner) in GAME_RENDERS.items():
        shots = sorted(renders_of(debian_package(package, folder), member, inner), key=lambda shot: shot[0])
        for _, image in rng.sample(shots, min(count, len(shots))):
            yield f"deb:{package}", image


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled font: the same images on every machine, whatever fonts it has."""
    return ImageFont.load_default(size=size)


CAPTION_WORDS = ("the team at the annual meeting in the city hall with guests from the region and "
                 "students during a visit to new lab award winners field trip summer course on "
                 "graduation day our volunteers community garden open day workshop").split()


def caption(rng: random.Random) -> str:
    return " ".join(rng.choice(CAPTION_WORDS) for _ in range(rng.randint(2, 7))).capitalize()


def collage_layout(width: int, height: int, rng: random.Random) -> list[tuple[int, int, int, int]]:
    """Boxes (left, top, right, bottom) tiling the canvas: a grid, or one large tile beside smaller ones."""
    if rng.random() < 0.7:
        columns, rows = rng.choice(((2, 1), (1, 2), (3, 1), (2, 2), (3, 2), (2, 3)))
        return [(width * c // columns, height * r // rows, width * (c + 1) // columns, height * (r + 1) // rows)
                for r in range(rows) for c in range(columns)]
    split = width * rng.choice((1, 2)) // 3 if rng.random() < 0.5 else width // 2
    small = rng.choice((2, 3))
    boxes = [(0, 0, split, height)]
    boxes += [(split, height * i // small, width, height * (i + 1) // small) for i in range(small)]
    return boxes


def fill_box(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The photo cropped to the box's aspect ratio around its centre, resized to the box."""
    width, height = box[2] - box[0], box[3] - box[1]
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))))
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def photo_collage(photos: list[Image.Image], rng: random.Random) -> Image.Image:
    """The photos tiled on one canvas, with gutters of a background colour, maybe captions and a heading."""
    width = rng.choice((480, 640, 800, 960))
    height = int(width * rng.uniform(0.5, 1.0))
    gutter = rng.choice((0, 2, 4, 6, 10, 16))
    background = rng.choice(((255, 255, 255), (255, 255, 255), (0, 0, 0), (235, 235, 235),
                             tuple(rng.randint(0, 255) for _ in range(3))))
    heading = rng.random() < 0.2
    top = rng.randint(40, 70) if heading else 0
    canvas = Image.new("RGB", (width, height + top), background)
    draw = ImageDraw.Draw(canvas)
    if heading:
        draw.text((gutter + 8, 8), caption(rng).upper(), font=font(top // 2), fill=(20, 120, 110))
    boxes = collage_layout(width, height, rng)
    captions = rng.random() < 0.3
    for box, photo in zip(boxes, (photos[i % len(photos)] for i in range(len(boxes)))):
        inner = (box[0] + gutter // 2, box[1] + gutter // 2 + top, box[2] - gutter // 2, box[3] - gutter // 2 + top)
        band = 22 if captions and inner[3] - inner[1] > 120 else 0
        canvas.paste(fill_box(photo, (inner[0], inner[1], inner[2], inner[3] - band)), inner[:2])
        if band:
            draw.text((inner[0] + 4, inner[3] - band + 4), caption(rng), font=font(12),
                      fill=(0, 0, 0) if sum(background) > 380 else (255, 255, 255))
    return canvas


def collages(count: int, rng: random.Random, natural: Path = NATURAL):
    """(source, collage) pairs, each collage made of photos of one source of natural/."""
    with open(natural / "labels.csv", newline="", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["label"] == "photo"]
    by_source: dict[str, list[str]] = {}
    for row in rows:
        by_source.setdefault(row["source_repo"], []).append(row["path"])
    sources = sorted(source for source, paths in by_source.items() if len(paths) >= 6)
    for _ in range(count):
        source = rng.choice(sources)
        paths = rng.sample(by_source[source], rng.randint(2, 6))
        photos = [Image.open(natural / path).convert("RGB") for path in paths]
        yield source, photo_collage(photos, rng)


KINDS = ("doom", "atari", "crafter", "collage", "render")
DEFAULT_KINDS = ("doom", "atari", "crafter", "collage")  # render downloads about 1.8 GB: asked for by name
ENGINES = {"doom": "vizdoom", "atari": "ale_py", "crafter": "crafter"}  # the module each game kind needs


def made_images(kind: str, count: int, rng: random.Random, debs: Path = DEBS):
    """(source_repo, label, kind label, image) of one kind of this script."""
    games = {"doom": ("pip:vizdoom", doom_frames), "atari": ("pip:ale-py", atari_frames),
             "crafter": ("pip:crafter", crafter_frames)}
    if kind in games:
        source, frames = games[kind]
        return ((source, "other", "game", image) for image in frames(count, rng))
    if kind == "render":
        return ((source, "other", "game", image) for source, image in game_renders(count, rng, debs))
    return ((f"collage:{source}", "other", "collage", image) for source, image in collages(count, rng))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="where to write the images and labels.csv")
    parser.add_argument("--only", choices=KINDS, action="append",
                        help=f"make only these kinds (repeatable); default {', '.join(DEFAULT_KINDS)}")
    parser.add_argument("--count", type=int, default=80, help="images of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--debs", default=str(DEBS), help="where the Debian packages of render are (fetched if absent)")
    args = parser.parse_args()
    kinds = args.only or list(DEFAULT_KINDS)
    if "render" in kinds and not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        parser.error("render needs apt-get and dpkg-deb (a Debian system); leave it out of --only")
    missing = [ENGINES[kind] for kind in kinds if kind in ENGINES and importlib.util.find_spec(ENGINES[kind]) is None]
    if missing:
        parser.error(f"no module {', '.join(missing)}: pip install vizdoom ale-py crafter, or make --only collage")
    if "collage" in kinds and not NATURAL.is_dir():
        parser.error(f"collages need {NATURAL} (the shared data beside the repo); leave out collage with --only")
    folder = Path(args.folder)
    rows = []
    total = sum(args.count * (len(GAME_RENDERS) if kind == "render" else 1) for kind in kinds)  # at most
    with progress.Bar(total=total, desc="extra images", unit="images") as bar:
        for kind in kinds:
            rng = random.Random(f"{args.seed}:{kind}")  # each kind the same with or without --only
            for i, (source, label, kind_label, image) in enumerate(made_images(kind, args.count, rng, Path(args.debs))):
                path = f"{kind}/{i:04d}.jpg"
                save_jpeg(image, folder / path, rng)
                rows.append({"path": path, "label": label, "kind": kind_label, "source_repo": source})
                bar.update(1, kind=kind)
    (folder / "made.json").write_text(json.dumps({"script": "bench/naturalness_extra_images.py", "seed": args.seed,
                                                  "count": args.count, "kinds": kinds}) + "\n")
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=LABEL_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} images and labels.csv to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
