# Stands in for `npm ci`: slow, and its result depends only on package-lock.json.
set -e
echo "installing dependencies from package-lock.json"
sleep 1
mkdir -p node_modules/left-pad
cp package-lock.json node_modules/.lock-snapshot
echo "module.exports = (s, n) => String(s).padStart(n)" > node_modules/left-pad/index.js
echo "installed $(ls node_modules | wc -l) package(s)"
