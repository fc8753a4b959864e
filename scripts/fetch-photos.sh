#!/usr/bin/env bash
# Fetches the real photographs of the composite benchmark (maskloop scenes) from Debian's archive into
# .cache/photos: the packages are downloaded with apt-get download and unpacked there, never installed (no
# dependencies pulled in, nothing written outside the project). Idempotent.
#   mate-backgrounds (nature photographs; GPL-2+ / CC BY-SA, see its copyright file)
#   python3-skimage  (scikit-image's sample images; BSD-3-Clause and CC0 / public domain, per image)
# With --distill it fetches instead the photographs the distilled encoder learns from (npm run distill-encoder):
#   plasma-workspace-wallpapers (KDE's wallpapers: 11 photographs; licences per image in its copyright file)
# None of them is in the composite benchmark, so the distilled encoder never saw the benchmark's photographs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--distill" ]]; then
  dir=".cache/photos/distill"
  if [[ -f "$dir/fetched-1" ]]; then
    echo "distillation photographs already in $dir"
    exit 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir/debs" "$dir/unpacked"
  if ! (cd "$dir/debs" && apt-get download plasma-workspace-wallpapers 2>/dev/null); then
    apt-get update -qq
    (cd "$dir/debs" && apt-get download plasma-workspace-wallpapers)
  fi
  dpkg-deb -x "$dir"/debs/*.deb "$dir/unpacked"
  wp="$dir/unpacked/usr/share/wallpapers"
  for f in BytheWater ColdRipple DarkestHour EveningGlow FallenLeaf Kite OneStandsOut Path summer_1am; do cp "$wp/$f/contents/images/1920x1080.jpg" "$dir/$f.jpg"; done
  cp "$wp/ColorfulCups/contents/images/2560x1600.jpg" "$dir/ColorfulCups.jpg"
  cp "$wp/Volna/contents/images/5120x2880.jpg" "$dir/Volna.jpg"
  cp "$dir/unpacked/usr/share/doc/plasma-workspace-wallpapers/copyright" "$dir/copyright.plasma-workspace-wallpapers"
  rm -rf "$dir/unpacked" "$dir/debs"
  touch "$dir/fetched-1"
  echo "distillation photographs in $dir: $(ls "$dir"/*.jpg | wc -l)"
  exit 0
fi
dir=".cache/photos"
stamp="$dir/fetched-2"
if [[ -f "$stamp" ]]; then
  echo "photographs already in $dir"
  exit 0
fi
rm -rf "$dir/debs" "$dir/unpacked" "$dir/backgrounds" "$dir/textures" "$dir/silhouettes" "$dir/copyright"
mkdir -p "$dir/debs" "$dir/unpacked" "$dir/backgrounds" "$dir/textures/animal" "$dir/textures/stone" "$dir/silhouettes"
if ! (cd "$dir/debs" && apt-get download mate-backgrounds python3-skimage 2>/dev/null); then
  apt-get update -qq
  (cd "$dir/debs" && apt-get download mate-backgrounds python3-skimage)
fi
for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir/unpacked"; done
mate="$dir/unpacked/usr/share/backgrounds/mate/nature"
sk="$dir/unpacked/usr/lib/python3/dist-packages/skimage/data"
for f in Aqua Blinds Dune FreshFlower Garden GreenMeadow LadyBird RainDrops Storm TwoWings Wood YellowFlower; do cp "$mate/$f.jpg" "$dir/backgrounds/"; done
for f in astronaut motorcycle_left rocket grass; do cp "$sk/$f."* "$dir/backgrounds/"; done
# Each object kind has its own look: fur and coffee browns for animals, gravel and brick for stones.
for f in chelsea coffee; do cp "$sk/$f.png" "$dir/textures/animal/"; done
for f in gravel brick; do cp "$sk/$f.png" "$dir/textures/stone/"; done
cp "$sk/horse.png" "$dir/silhouettes/"
mkdir -p "$dir/copyright"
cp "$dir/unpacked/usr/share/doc/mate-backgrounds/copyright" "$dir/copyright/mate-backgrounds"
cp "$dir/unpacked/usr/share/doc/python3-skimage/copyright" "$dir/copyright/python3-skimage"
rm -rf "$dir/unpacked" "$dir/debs"
touch "$stamp"
echo "photographs in $dir: $(ls "$dir/backgrounds" | wc -l) backgrounds, $(find "$dir/textures" -type f | wc -l) textures, $(ls "$dir/silhouettes" | wc -l) silhouette"
