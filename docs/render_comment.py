"""Renders a deployer PR comment (Markdown) to HTML styled like a GitHub comment, for docs/pr-comment.png.

  .lab/venv/bin/python docs/render_comment.py summary.md > /tmp/comment.html
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=980,900 \\
    --screenshot=docs/pr-comment.png file:///tmp/comment.html
"""

import sys

import markdown

CSS = """
body { font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif, "Noto Color Emoji";
       font-size: 14px; color: #1f2328; background: #fff; margin: 16px; }
.comment { border: 1px solid #d1d9e0; border-radius: 6px; max-width: 940px; }
.header { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px; border-radius: 6px 6px 0 0; color: #59636e; }
.header b { color: #1f2328; }
.body { padding: 4px 16px 12px; }
h3 { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #d1d9e0; padding: 6px 12px; }
th { background: #f6f8fa; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; background: #eff1f3; padding: 2px 4px; border-radius: 4px; }
pre { background: #f6f8fa; padding: 12px; border-radius: 6px; overflow: hidden; font-size: 11.5px; line-height: 1.45; }
pre code { background: none; padding: 0; }
summary { cursor: pointer; font-weight: 600; margin: 6px 0; }
"""


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    text = text.replace("<details>", '<details open markdown="1">', 1)  # show the failure report
    text = text.replace("<details>", '<details markdown="1">')
    body = markdown.markdown(text, extensions=["tables", "fenced_code", "md_in_html"])
    print(f"""<!doctype html><html><head><meta charset="utf-8"><style>{CSS}</style></head><body>
<div class="comment"><div class="header"><b>github-actions</b> bot commented</div><div class="body">{body}</div></div>
</body></html>""")


if __name__ == "__main__":
    main()
