"""The supervision workflow after publication: self-inspection feedback (机构自查反馈), case tracking,
on-site worksheets (现场检查工作底稿), 双随机一公开 sampling, rule precision, 回头看 and the period report.

`cases` holds the state machine; `feedback`, `worksheet`, `recovery` turn files into decisions;
`store` is the only module here that reads or writes the lake (under the lake's writer lease); the
commands are in `pipelines/commands/`.
"""
