// The texts of the 发起审批 screens, merged into the app's messages when first imported.
import { i18n } from '../../i18n'

const zh = {
  processes: {
    title: '发起审批', tile: '发起审批', pick: '选择审批类型', mine: '我的申请', noneYet: '还没有申请', none: '暂无可发起的审批',
    submit: '提交', submitted: '已提交，等待{step}', submittedPlain: '已提交',
    required: '请填写“{field}”', choose: '请选择', searchPerson: '输入姓名搜索', noPerson: '没有找到人员', searchPatient: '输入姓名或病历号搜索', noPatient: '没有找到患者',
    addFile: '上传照片', uploading: '上传中…', files: '已上传 {n} 个', content: '申请事项', closedAt: '办结于 {at}', applicant: '申请人', back: '返回',
    waitingAt: '等待：{step}', waitingWho: '{step}（{who}）',
  },
}
const en = {
  processes: {
    title: 'Start an approval', tile: 'New approval', pick: 'Choose a process', mine: 'My applications', noneYet: 'No applications yet', none: 'Nothing to start',
    submit: 'Submit', submitted: 'Submitted, waiting for {step}', submittedPlain: 'Submitted',
    required: 'Fill in “{field}”', choose: 'Choose', searchPerson: 'Search by name', noPerson: 'Nobody found', searchPatient: 'Search by name or record number', noPatient: 'No patient found',
    addFile: 'Upload a photo', uploading: 'Uploading…', files: '{n} uploaded', content: 'Details', closedAt: 'Closed {at}', applicant: 'Applicant', back: 'Back',
    waitingAt: 'Waiting: {step}', waitingWho: '{step} ({who})',
  },
}

i18n.global.mergeLocaleMessage('zh-CN', zh)
i18n.global.mergeLocaleMessage('en', en)
