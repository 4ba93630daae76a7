"""`make chaos`: a scripted fault run of the whole stack (issue 13 item 11); see chaos.run."""
