"""Console progress of a run: each state printed once, eval results when computed."""

import io
import re

from mmscale.train.progress import Progress, format_eval


class _Tty(io.StringIO):
  def isatty(self):
    return True


VAL = {"text": {"loss": 1.5, "bpb": 2.0},
       "caption": {"loss": 0.75, "bpb": 1.0, "loss_text": 0.75, "loss_image": 0.125}}


def test_eval_line_names_every_source_and_media_loss():
  assert format_eval(20, VAL) == "eval step 20: caption 0.7500 (image 0.1250) · text 1.5000 nats/token"


def test_log_file_gets_plain_lines_each_state_once():
  out = io.StringIO()
  p = Progress(10, 0, stream=out, every_s=3600)
  for step in (2, 4, 6):
    p.update(step, 100 * step, 10.0 - step)
  p.eval(6, VAL)
  for step in (8, 10):
    p.update(step, 100 * step, 10.0 - step)
  p.close()
  lines = out.getvalue().splitlines()
  assert "\r" not in out.getvalue()
  # The first state, then nothing until the last step (every_s), and the eval when it came.
  assert [l.split("  ")[0] for l in lines] == ["step 2/10", "eval step 6: caption 0.7500 (image 0.1250) · text 1.5000 nats/token", "step 10/10"]
  assert re.fullmatch(r"step 10/10  loss 0\.0000  [\d,]+ tok/s  elapsed 0m0\ds  ETA 0m00s", lines[-1])


def test_a_run_stopped_early_prints_its_last_state_once():
  out = io.StringIO()
  p = Progress(10, 0, stream=out, every_s=3600)
  p.update(2, 200, 3.0)
  p.update(4, 400, 2.5)
  p.close()
  assert [l.split("  ")[:2] for l in out.getvalue().splitlines()] == [["step 2/10", "loss 3.0000"],
                                                                      ["step 4/10", "loss 2.5000"]]


def test_terminal_bar_shows_each_steps_own_values_and_evals_above_it():
  out = _Tty()
  p = Progress(10, 0, stream=out)
  p.eval(0, VAL)  # The initial eval comes before the bar exists: a plain line.
  for step in range(1, 11):
    p.update(step, 100 * step, 10.0 - step)
    if step == 5:
      p.eval(5, VAL)
  p.close()
  text = out.getvalue()
  frames = [f for f in re.split(r"[\r\n]", text) if "|" in f]
  assert frames and not any(f.lstrip().startswith("0%") for f in frames)  # No bar before step 1.
  for f in frames:  # Every drawn bar shows the loss of the step it shows.
    m = re.search(r" (\d+)/10 .*loss=(\d+\.\d+)", f)
    if m:
      assert float(m.group(2)) == 10.0 - int(m.group(1)), f
  assert re.search(r" 10/10 .*loss=0\.0000", frames[-1])
  lines = text.split("\n")
  assert lines[0] == "eval step 0: caption 0.7500 (image 0.1250) · text 1.5000 nats/token"
  assert sum(l.endswith("eval step 5: caption 0.7500 (image 0.1250) · text 1.5000 nats/token")
             for l in lines) == 1


def test_other_processes_print_nothing():
  out = _Tty()
  p = Progress(10, 0, enabled=False, stream=out)
  p.update(5, 500, 1.0)
  p.eval(5, VAL)
  p.close()
  assert out.getvalue() == ""
