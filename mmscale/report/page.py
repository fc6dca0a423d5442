"""index.html: every section's figures by relative path, inline CSS, nothing fetched from a network."""

import datetime
import html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1400px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.2em;border-bottom:1px solid #ddd;margin-top:2em}
h3{font-size:1em}.meta{color:#666;font-size:.9em}.caption{color:#444;max-width:60em}
figure{margin:8px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.8em;color:#666}.skip{color:#8a5a00;background:#fff6e0;padding:6px 10px;
border-left:3px solid #e0a000}.note{color:#555;font-size:.9em;margin:2px 0}
table.coef{border-collapse:collapse;font-size:.85em;margin-bottom:1em}
table.coef td,table.coef th{border:1px solid #ccc;padding:3px 8px;text-align:right}
table.coef td:first-child{text-align:left}span.ci{color:#777;white-space:nowrap}nav a{margin-right:12px}
"""


def render(title: str, meta: list, sections: list, skipped: list) -> str:
  """sections: style.Section list; skipped: (title, reason) of the figures that could not be drawn."""
  nav = " ".join(f"<a href='#{html.escape(s.key)}'>{html.escape(s.title)}</a>" for s in sections)
  if skipped:
    nav += " <a href='#skipped'>Figures not drawn</a>"
  body = []
  for s in sections:
    body.append(f"<section id='{html.escape(s.key)}'><h2>{html.escape(s.title)}</h2>")
    if s.caption:
      body.append(f"<p class=caption>{html.escape(s.caption)}</p>")
    for stem in s.images:
      body.append(f"<figure><a href='{stem}.svg'><img src='{stem}.png' alt='{html.escape(s.title)}'>"
                  f"</a><figcaption>{stem}.png · <a href='{stem}.svg'>SVG</a></figcaption></figure>")
    body.append(s.html)
    body.extend(f"<p class=note>{html.escape(n)}</p>" for n in s.notes)
    body.append("</section>")
  if skipped:
    body.append("<section id='skipped'><h2>Figures not drawn</h2>")
    body.extend(f"<p class=skip><b>{html.escape(t)}</b>: {html.escape(r)}</p>" for t, r in skipped)
    body.append("</section>")
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  meta_html = "".join(f"<div class=meta>{html.escape(m)}</div>" for m in meta)
  return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
          f"<meta name=viewport content='width=device-width,initial-scale=1'>"
          f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
          f"<h1>{html.escape(title)}</h1>{meta_html}<div class=meta>written {stamp} by mmscale report"
          f"</div><nav>{nav}</nav>{''.join(body)}</body></html>\n")


def write(out_dir, title, meta, sections, skipped) -> object:
  path = out_dir / "index.html"
  path.write_text(render(title, meta, sections, skipped), encoding="utf-8")
  return path
